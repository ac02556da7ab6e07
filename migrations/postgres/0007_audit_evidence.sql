-- The audit log, evidence and the manual workflow's dates and test notes (PostgreSQL flavour;
-- keep in step with migrations/sqlite/0007_audit_evidence.sql).

-- Append-only record of every change a person (or an integration) made: who, when, what, the
-- old and the new value. Rows are only ever inserted: the trigger below rejects any UPDATE,
-- DELETE or TRUNCATE, and the store has no statement that would try.
CREATE TABLE audit_log (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Epoch milliseconds (UTC).
    at          BIGINT  NOT NULL,
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
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END
$$;
CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

-- Evidence content, addressed by its SHA-256 (lower-case hex). `content` is NULL when the
-- bytes live in the `[evidence] store = "directory"` directory, in a file named by the hash.
CREATE TABLE evidence_blobs (
    sha256     TEXT    PRIMARY KEY,
    size       BIGINT  NOT NULL,
    content    BYTEA,
    created_at BIGINT  NOT NULL
);

-- Evidence attached to one action instance: an uploaded file, a link, or the source response
-- that decided an automatic status change. Never deleted: a withdrawal keeps the row and the
-- blob, and a correction adds a row (`superseded_by` names it).
CREATE TABLE evidence (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope_kind    TEXT    NOT NULL CHECK (scope_kind IN ('tenant', 'group')),
    scope_id      TEXT    NOT NULL,
    action_id     TEXT    NOT NULL,
    kind          TEXT    NOT NULL CHECK (kind IN ('file', 'link', 'automatic')),
    -- The file name, the link's URL, or a label of the automatic evidence.
    name          TEXT    NOT NULL,
    media_type    TEXT,
    size          BIGINT,
    sha256        TEXT    REFERENCES evidence_blobs (sha256),
    uploaded_by   TEXT    NOT NULL,
    uploaded_at   BIGINT  NOT NULL,
    withdrawn_at  BIGINT,
    withdrawn_by  TEXT,
    superseded_by BIGINT  REFERENCES evidence (id)
);
CREATE INDEX evidence_instance ON evidence (scope_kind, scope_id, action_id, id);

-- The evidence (SHA-256 of the blob) of an automatic status change.
ALTER TABLE action_transitions ADD COLUMN evidence_sha256 TEXT;

-- The manual workflow: dates of the implementation and of the test, and test notes (`notes`
-- holds the implementation notes).
ALTER TABLE manual_statuses ADD COLUMN implementation_date BIGINT;
ALTER TABLE manual_statuses ADD COLUMN test_date BIGINT;
ALTER TABLE manual_statuses ADD COLUMN test_notes TEXT;
