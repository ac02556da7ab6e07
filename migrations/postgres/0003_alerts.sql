-- Regressions, alerts and per-category history (PostgreSQL flavour; keep in step with
-- migrations/sqlite/0003_alerts.sql). Conventions as in 0001_init.sql: instants are BIGINT
-- epoch milliseconds (UTC), structured values are JSON text.

-- The regression detector's state per action instance (JSON of alerts::InstanceState: baseline,
-- pending debounce count, open regression, open staleness / collection-error condition), written
-- in the poll's transaction so a restart resumes the debounce window.
CREATE TABLE alert_state (
    tenant     TEXT    NOT NULL,
    action_id  TEXT    NOT NULL,
    state      TEXT    NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, action_id)
);

-- Every detected event (regression, recovery, stale, stale_cleared, collection_error,
-- collection_recovered): the regression ledger. `dedup_key` is stable
-- (tenant/action/kind/episode-start) so a re-written poll never duplicates an event.
CREATE TABLE alert_events (
    id                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key          TEXT    NOT NULL UNIQUE,
    tenant             TEXT    NOT NULL,
    action_id          TEXT    NOT NULL,
    kind               TEXT    NOT NULL,
    severity           TEXT    NOT NULL,
    at                 BIGINT NOT NULL,
    episode_started_at BIGINT NOT NULL,
    -- JSON of alerts::AlertEvent (statuses, credits, points lost, score delta, signals, controls).
    event              TEXT    NOT NULL
);
CREATE INDEX alert_events_tenant_action_at ON alert_events (tenant, action_id, at);
CREATE INDEX alert_events_tenant_at ON alert_events (tenant, at);

-- Transactional outbox: one row per (event, notifier), written with the event; the delivery
-- task marks it delivered (or retries it with backoff, or marks it failed after max_attempts).
CREATE TABLE alert_outbox (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id        BIGINT  NOT NULL REFERENCES alert_events (id) ON DELETE CASCADE,
    notifier        TEXT    NOT NULL,
    -- tenant/action/family: the alert a firing event and its resolution share.
    alert_key       TEXT    NOT NULL,
    resolves        BIGINT NOT NULL CHECK (resolves IN (0, 1)),
    created_at      BIGINT NOT NULL,
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    delivered_at    BIGINT,
    last_error      TEXT,
    UNIQUE (event_id, notifier)
);
CREATE INDEX alert_outbox_due ON alert_outbox (state, next_attempt_at);
CREATE INDEX alert_outbox_alert ON alert_outbox (notifier, alert_key, id);

-- A tenant's score per action category, a row only when it changed.
CREATE TABLE category_snapshots (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    category        TEXT    NOT NULL,
    at              BIGINT NOT NULL,
    points_achieved DOUBLE PRECISION    NOT NULL,
    points_possible DOUBLE PRECISION    NOT NULL,
    ratio           DOUBLE PRECISION    NOT NULL
);
CREATE INDEX category_snapshots_tenant_category_at ON category_snapshots (tenant, category, at);
CREATE INDEX category_snapshots_tenant_at ON category_snapshots (tenant, at);

-- The rule (testing logic) that decided each transition, for the audit trail; NULL on rows
-- written before this migration.
ALTER TABLE action_transitions ADD COLUMN testing_logic TEXT;
