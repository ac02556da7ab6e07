-- A tenant's score per assessment, a row only when it changed (written in the poll's
-- transaction, like score_snapshots and category_snapshots). Keep in step with the other
-- backend's 0004_assessment_snapshots.sql.
CREATE TABLE assessment_snapshots (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    assessment      TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    points_achieved REAL NOT NULL,
    points_possible REAL NOT NULL,
    ratio           REAL NOT NULL
);
CREATE INDEX assessment_snapshots_tenant_assessment_at
    ON assessment_snapshots (tenant, assessment, at);
CREATE INDEX assessment_snapshots_tenant_at ON assessment_snapshots (tenant, at);
