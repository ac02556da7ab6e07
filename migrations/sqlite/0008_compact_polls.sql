-- Compact poll records (issue 12, target 3) and what lets a steady poll skip reading and
-- rewriting the tenant's current state (target 2). Keep in step with the other backend's
-- 0008_compact_polls.sql.
--
-- A poll gets a full `polls` row only when it is worth one on its own: it was not a success,
-- it changed something (signals, gaps, action states, transitions, snapshots, alert events,
-- evidence), it is the first poll of its connector, the first after a failed one, or the
-- tenant's first after postured started. Every poll, full row or not, is counted in
-- `poll_days` and updates its connector's row of `connector_state`, in the poll's one
-- transaction.

-- One row per (tenant, connector, UTC day): how many polls that day, by outcome, how many of
-- them have a full `polls` row, the first and last poll times. Pruned by `[history] retention`
-- with `polls` (a day goes once its last poll is older than the cutoff).
CREATE TABLE poll_days (
    tenant           TEXT    NOT NULL,
    connector        TEXT    NOT NULL,
    -- Days since the Unix epoch (UTC) of the polls' `started_at`.
    day              INTEGER NOT NULL,
    polls            INTEGER NOT NULL,
    successes        INTEGER NOT NULL,
    partials         INTEGER NOT NULL,
    failures         INTEGER NOT NULL,
    timeouts         INTEGER NOT NULL,
    recorded         INTEGER NOT NULL,
    first_started_at INTEGER NOT NULL,
    last_started_at  INTEGER NOT NULL,
    last_finished_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, connector, day)
) WITHOUT ROWID;

-- The latest poll of each (tenant, connector), full row or not (what the API shows as its last
-- poll), the end of its latest success, and the signal set its latest full signal write
-- stored: `signals_poll_id` marks those rows of `signal_current` (its `poll_id`),
-- `signals_digest` is the SHA-256 (first 128 bits, hex) of their keys, values and times
-- relative to that poll's start (`signals_base`), and `signals_seen` is the start of the latest
-- poll that observed the same set: those rows are fresh as of it, so their stored
-- `observed_at` and `expires_at` are `signals_seen - signals_base` behind (readers add it; the
-- next full signal write of the connector adds it to the rows first).
CREATE TABLE connector_state (
    tenant             TEXT    NOT NULL,
    connector          TEXT    NOT NULL,
    last_started_at    INTEGER NOT NULL,
    last_finished_at   INTEGER NOT NULL,
    last_outcome       TEXT    NOT NULL
        CHECK (last_outcome IN ('success', 'partial', 'failure', 'timeout')),
    -- JSON array of the latest poll's gaps; NULL when there were none.
    last_error_summary TEXT,
    last_success_at    INTEGER,
    signals_poll_id    INTEGER,
    signals_digest     TEXT,
    signals_base       INTEGER,
    signals_seen       INTEGER,
    PRIMARY KEY (tenant, connector)
) WITHOUT ROWID;

-- The SHA-256 (first 128 bits, hex) of what the tenant's latest poll stored as its current
-- state: every evaluated action's state (`since` and `updated_at` aside), the score, the
-- category and the assessment scores. A poll whose evaluation has the same digest skips
-- reading and comparing `action_state` and the latest snapshots: they already hold it.
CREATE TABLE tenant_digest (
    tenant TEXT NOT NULL PRIMARY KEY,
    digest TEXT NOT NULL
) WITHOUT ROWID;

-- The poll whose full signal write last stored the row (see connector_state); NULL for rows
-- written before this migration.
ALTER TABLE signal_current ADD COLUMN poll_id INTEGER;

-- What the existing polls tell.
INSERT INTO poll_days (tenant, connector, day, polls, successes, partials, failures, timeouts,
    recorded, first_started_at, last_started_at, last_finished_at)
SELECT tenant, connector, started_at / 86400000, COUNT(*),
    SUM(CASE WHEN outcome = 'success' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'partial' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END),
    SUM(CASE WHEN outcome = 'timeout' THEN 1 ELSE 0 END),
    COUNT(*), MIN(started_at), MAX(started_at), MAX(finished_at)
FROM polls GROUP BY tenant, connector, started_at / 86400000;

INSERT INTO connector_state (tenant, connector, last_started_at, last_finished_at, last_outcome,
    last_error_summary, last_success_at)
SELECT p.tenant, p.connector, p.started_at, p.finished_at, p.outcome, p.error_summary,
    (SELECT MAX(s.finished_at) FROM polls s
        WHERE s.tenant = p.tenant AND s.connector = p.connector AND s.outcome = 'success')
FROM polls p
WHERE p.id = (SELECT MAX(l.id) FROM polls l WHERE l.tenant = p.tenant AND l.connector = p.connector);
