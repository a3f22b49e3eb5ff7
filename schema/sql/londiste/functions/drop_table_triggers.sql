-- londiste.drop_table_triggers(queue, table): drop the triggers the queue's
-- replication made on the table (_londiste_<queue>, its _truncate, and the
-- SKIP trigger zzz__londiste_<queue>).
CREATE OR REPLACE FUNCTION londiste.drop_table_triggers(i_queue_name text, i_table_name text)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_oid oid := londiste.find_table_oid(i_table_name);
    v_trg text;
BEGIN
    IF v_oid IS NULL THEN
        RETURN;
    END IF;
    FOR v_trg IN SELECT t.tgname FROM pg_catalog.pg_trigger t
                  WHERE t.tgrelid = v_oid AND NOT t.tgisinternal
                    AND t.tgname IN ('_londiste_' || i_queue_name, '_londiste_' || i_queue_name || '_truncate',
                                     'zzz__londiste_' || i_queue_name) LOOP
        EXECUTE 'DROP TRIGGER ' || pg_catalog.quote_ident(v_trg) || ' ON ' || londiste.quote_fqname(i_table_name);
    END LOOP;
END
$$;
