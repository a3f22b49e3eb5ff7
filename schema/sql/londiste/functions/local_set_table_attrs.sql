-- londiste.local_set_table_attrs(queue, table, attrs): a local table's
-- attributes (urlencoded: handler, copy_node, ...).
CREATE OR REPLACE FUNCTION londiste.local_set_table_attrs(i_queue_name text, i_table_name text,
        i_table_attrs text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
BEGIN
    UPDATE londiste.table_info SET table_attrs = i_table_attrs
     WHERE queue_name = i_queue_name AND table_name = v_name AND local;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'no such local table: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := v_name || ': Table attributes stored';
END
$$;
