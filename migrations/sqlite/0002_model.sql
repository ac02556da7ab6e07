-- Compliance Manager model: imported templates and manual action statuses (SQLite flavour; the
-- PostgreSQL flavour in migrations/postgres/0002_model.sql has the same model).

-- Templates imported at run time (`postured template import`), one JSON document each (the
-- `Template` shape of src/model/template.rs). Built-in templates are not stored.
CREATE TABLE templates (
    id         TEXT    PRIMARY KEY,
    body       TEXT    NOT NULL,
    updated_at INTEGER NOT NULL
) WITHOUT ROWID;

-- What a person recorded for one action instance: technical and provider-managed actions are
-- scoped to a tenant, operational and documentation actions to a group.
CREATE TABLE manual_statuses (
    scope_kind            TEXT    NOT NULL CHECK (scope_kind IN ('tenant', 'group')),
    scope_id              TEXT    NOT NULL,
    action_id             TEXT    NOT NULL,
    testing_source        TEXT    NOT NULL CHECK (testing_source IN ('automatic', 'manual', 'parent')),
    implementation_status TEXT,
    test_status           TEXT,
    parent                TEXT,
    assigned_to           TEXT,
    notes                 TEXT,
    -- JSON array of evidence links.
    evidence              TEXT    NOT NULL DEFAULT '[]',
    updated_at            INTEGER NOT NULL,
    PRIMARY KEY (scope_kind, scope_id, action_id)
) WITHOUT ROWID;
