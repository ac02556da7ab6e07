-- The write probe of the store's health check (`Store::check_health`, behind `/readyz` and
-- `postured_store_healthy`): one row, upserted with the instant of the last check. Keep in step
-- with the other backend's 0005_store_health.sql.
CREATE TABLE store_health (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at INTEGER NOT NULL
);
