-- pgq.pgqgo_queue_changed(): the trigger pgqgo_queue_gen on pgq.queue (not in
-- PgQ 3.5). A change of what an insert reads from a queue row (id, name,
-- current table, disable_insert, per_tx_limit) takes a new generation number
-- from pgq.pgqgo_queue_gen and writes it to pgq.pgqgo_queue_version in the
-- same transaction. A session may keep a queue row it read while
--   * the sequence's last value was the generation committed in
--     pgq.pgqgo_queue_version (no change was under way: one that has taken
--     its number but not committed leaves the table behind the sequence), and
--   * the sequence has not moved since (every later change moves it before
--     it commits).
-- Concurrent changes queue on the one row of pgq.pgqgo_queue_version; the one
-- that waited takes its number again when it gets the row, so the last to
-- commit writes the sequence's last value. One that rolls back leaves the
-- sequence ahead until the next change or pgq.maint_rotate_tables_step2 catches
-- the table up. The trigger fires in every session_replication_role.
CREATE OR REPLACE FUNCTION pgq.pgqgo_queue_changed()
RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgq.pgqgo_queue_version SET gen = nextval('pgq.pgqgo_queue_gen');
    RETURN NULL;
END
$$;

DO $trigger$
BEGIN
    IF to_regclass('pgq.pgqgo_queue_version') IS NOT NULL -- absent below migration 3
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger
                        WHERE tgrelid = 'pgq.queue'::regclass AND tgname = 'pgqgo_queue_gen') THEN
        CREATE TRIGGER pgqgo_queue_gen
            AFTER INSERT OR DELETE OR UPDATE OF queue_id, queue_name, queue_cur_table, queue_disable_insert,
                                                queue_per_tx_limit
            ON pgq.queue FOR EACH STATEMENT EXECUTE FUNCTION pgq.pgqgo_queue_changed();
        ALTER TABLE pgq.queue ENABLE ALWAYS TRIGGER pgqgo_queue_gen;
    END IF;
END
$trigger$;
