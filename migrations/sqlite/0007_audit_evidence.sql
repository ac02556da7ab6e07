-- The audit log, evidence and the manual workflow's dates and test notes (SQLite flavour; keep
-- in step with migrations/postgres/0007_audit_evidence.sql).

-- Append-only record of every change a person (or an integration) made: who, when, what, the
-- old and the new value. Rows are only ever inserted: the triggers below abort any UPDATE or
-- DELETE, and the store has no statement that would try.
CREATE TABLE audit_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    -- Epoch milliseconds (UTC).
    at          INTEGER NOT NULL,
    -- The principal's subject: `token:<id>`, `oidc:<sub>`, `api_token`, `cli:<os user>`.
    actor       TEXT    NOT NULL,
    -- Stable verb: `action.update`, `evidence.add`, `evidence.withdraw`, `token.create` ...
    action      TEXT    NOT NULL,
    -- The instance's tenant or group when the object is an action instance.
    tenant      TEXT,
    group_id    TEXT,
    -- What changed: an action id, an evidence id (`evidence:<id>`), a token (`token:<id>`).
    object      TEXT    NOT NULL,
    -- The field that changed (one row per field); NULL for a whole-object event.
    field       TEXT,
    -- JSON text of the values; NULL when there was none.
    old_value   TEXT,
    new_value   TEXT,
    request_id  TEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_tenant ON audit_log (tenant, id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

-- Evidence content, addressed by its SHA-256 (lower-case hex). `content` is NULL when the
-- bytes live in the `[evidence] store = "directory"` directory, in a file named by the hash.
CREATE TABLE evidence_blobs (
    sha256     TEXT    PRIMARY KEY,
    size       INTEGER NOT NULL,
    content    BLOB,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Evidence attached to one action instance: an uploaded file, a link, or the source response
-- that decided an automatic status change. Never deleted: a withdrawal keeps the row and the
-- blob, and a correction adds a row (`superseded_by` names it).
CREATE TABLE evidence (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    scope_kind    TEXT    NOT NULL CHECK (scope_kind IN ('tenant', 'group')),
    scope_id      TEXT    NOT NULL,
    action_id     TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('file', 'link', 'automatic')),
    -- The file name, the link's URL, or a label of the automatic evidence.
    name          TEXT    NOT NULL,
    media_type    TEXT,
    size          INTEGER,
    sha256        TEXT    REFERENCES evidence_blobs (sha256),
    uploaded_by   TEXT    NOT NULL,
    uploaded_at   INTEGER NOT NULL,
    withdrawn_at  INTEGER,
    withdrawn_by  TEXT,
    superseded_by INTEGER REFERENCES evidence (id)
);
CREATE INDEX evidence_instance ON evidence (scope_kind, scope_id, action_id, id);

-- The evidence (SHA-256 of the blob) of an automatic status change.
ALTER TABLE action_transitions ADD COLUMN evidence_sha256 TEXT;

-- The manual workflow: dates of the implementation and of the test, and test notes (`notes`
-- holds the implementation notes).
ALTER TABLE manual_statuses ADD COLUMN implementation_date INTEGER;
ALTER TABLE manual_statuses ADD COLUMN test_date INTEGER;
ALTER TABLE manual_statuses ADD COLUMN test_notes TEXT;
