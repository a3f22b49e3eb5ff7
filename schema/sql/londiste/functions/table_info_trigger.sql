-- londiste.table_info_trigger(): a table leaving londiste.table_info takes
-- its replication triggers with it (BEFORE DELETE on table_info).
CREATE OR REPLACE FUNCTION londiste.table_info_trigger()
RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.local THEN
        PERFORM londiste.drop_table_triggers(OLD.queue_name, coalesce(OLD.dest_table, OLD.table_name));
    END IF;
    RETURN OLD;
END
$$;

DROP TRIGGER IF EXISTS table_info_trigger_sync ON londiste.table_info;
CREATE TRIGGER table_info_trigger_sync BEFORE DELETE ON londiste.table_info
    FOR EACH ROW EXECUTE PROCEDURE londiste.table_info_trigger();
