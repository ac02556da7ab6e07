-- postured schema, SQLite flavour (the PostgreSQL flavour in migrations/postgres/ has the same
-- model; keep them in step).
--
-- Conventions:
--   * Every instant is an INTEGER of milliseconds since the Unix epoch, UTC. It sorts correctly
--     and compares cheaply; sub-millisecond precision is dropped on write.
--   * Booleans would be INTEGER 0/1 (none are stored today).
--   * Signal values and signal lists are JSON text (`true`, `0.8`, `"enabled"`).
--   * Statuses are their snake_case names (`passed`, `failed_high_risk`, ...).
--   * History tables (`signal_history`, `action_transitions`, `score_snapshots`) only gain a row
--     when something changed, so a year of polls for 2,000 tenants stays small; `polls` gains a
--     row per poll and is the table a retention job must prune.

-- One row per poll of one (tenant, connector).
CREATE TABLE polls (
    id            INTEGER PRIMARY KEY,
    tenant        TEXT    NOT NULL,
    connector     TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER NOT NULL,
    outcome       TEXT    NOT NULL CHECK (outcome IN ('success', 'partial', 'failure', 'timeout')),
    -- JSON array of the poll's gaps ({"prefix","kind","reason"}); NULL when there were none.
    error_summary TEXT
);
CREATE INDEX polls_tenant_started ON polls (tenant, started_at);

-- Latest value per (tenant, signal key).
CREATE TABLE signal_current (
    tenant      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    observed_at INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant, key)
) WITHOUT ROWID;

-- A row each time a signal's value changed (including its first observation).
CREATE TABLE signal_history (
    id          INTEGER PRIMARY KEY,
    tenant      TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    observed_at INTEGER NOT NULL
);
CREATE INDEX signal_history_tenant_key_observed ON signal_history (tenant, key, observed_at);
CREATE INDEX signal_history_tenant_observed ON signal_history (tenant, observed_at);

-- Namespaces each connector could not collect in its latest poll (replaced on every poll).
CREATE TABLE signal_gaps (
    tenant    TEXT NOT NULL,
    connector TEXT NOT NULL,
    prefix    TEXT NOT NULL,
    kind      TEXT NOT NULL,
    reason    TEXT NOT NULL,
    PRIMARY KEY (tenant, connector, prefix)
) WITHOUT ROWID;

-- Last state per (tenant, action). `since` is when the current test status began; `updated_at`
-- is the evaluation that last changed the row.
CREATE TABLE action_state (
    tenant                TEXT    NOT NULL,
    action_id             TEXT    NOT NULL,
    test_status           TEXT    NOT NULL,
    implementation_status TEXT    NOT NULL,
    credit                REAL    NOT NULL CHECK (credit >= 0 AND credit <= 1),
    points                INTEGER NOT NULL CHECK (points >= 0),
    points_achieved       REAL    NOT NULL,
    points_possible       REAL    NOT NULL,
    since                 INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL,
    reason                TEXT,
    testing_logic         TEXT    NOT NULL,
    PRIMARY KEY (tenant, action_id)
) WITHOUT ROWID;

-- Status or credit changes of an action, with the signals that drove them.
CREATE TABLE action_transitions (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    action_id       TEXT    NOT NULL,
    from_status     TEXT,
    to_status       TEXT    NOT NULL,
    from_credit     REAL,
    to_credit       REAL    NOT NULL,
    points_achieved REAL    NOT NULL,
    points_possible REAL    NOT NULL,
    reason          TEXT,
    -- JSON array of [key, value] pairs.
    signals         TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    poll_id         INTEGER REFERENCES polls (id) ON DELETE SET NULL
);
CREATE INDEX action_transitions_tenant_at ON action_transitions (tenant, at);
CREATE INDEX action_transitions_tenant_action_at ON action_transitions (tenant, action_id, at);
CREATE INDEX action_transitions_poll ON action_transitions (poll_id);

-- The tenant's overall score, a row only when it changed.
CREATE TABLE score_snapshots (
    id              INTEGER PRIMARY KEY,
    tenant          TEXT    NOT NULL,
    at              INTEGER NOT NULL,
    points_achieved REAL    NOT NULL,
    points_possible REAL    NOT NULL,
    ratio           REAL    NOT NULL
);
CREATE INDEX score_snapshots_tenant_at ON score_snapshots (tenant, at);
