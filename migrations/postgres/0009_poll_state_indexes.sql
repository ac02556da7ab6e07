-- Indexes for the steady poll's one read and the dashboard's audit history of an action (issue
-- 12). Keep in step with the other backend's 0009_poll_state_indexes.sql.

-- The steady poll's SELECT counts the rows of `signal_current` still marked as the connector's
-- stored signal set (`WHERE tenant = ? AND poll_id = ?`): without this index it reads every
-- signal row of the tenant, with it only the marked ones (from the index alone).
CREATE INDEX signal_current_poll ON signal_current (tenant, poll_id);

-- The audit rows of one action instance, newest first (the dashboard's action page: the tenant
-- or the group, the object, ordered by id): one index range each, however many other rows the
-- tenant or group has.
CREATE INDEX audit_log_tenant_object ON audit_log (tenant, object, id);
CREATE INDEX audit_log_group_object ON audit_log (group_id, object, id);
