-- londiste.local_set_table_struct(queue, table, ddl): the indexes and
-- constraints a copy dropped to load faster, to be made again once it
-- catches up (only while in-copy or catching-up).
CREATE OR REPLACE FUNCTION londiste.local_set_table_struct(i_queue_name text, i_table_name text,
        i_dropped_ddl text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
BEGIN
    UPDATE londiste.table_info SET dropped_ddl = i_dropped_ddl
     WHERE queue_name = i_queue_name AND table_name = v_name AND local;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'no such local table: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Table struct stored';
END
$$;
