-- londiste.set_session_replication_role(value, local): set
-- session_replication_role (replica: no triggers fire, for applying
-- replicated rows; local: pgq's triggers make no events, for EXECUTE) for
-- the transaction or the session. Runs with its owner's rights, since the
-- setting needs a superuser: install pgq_node and londiste as one (or, on
-- managed PostgreSQL, as a role the service lets set it) for replicas.
CREATE OR REPLACE FUNCTION londiste.set_session_replication_role(val text, is_local boolean)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    PERFORM set_config('session_replication_role', val, is_local);
END
$$;
