-- londiste.global_remove_table(queue, table): the table is no longer
-- replicated through the queue anywhere; its row goes (and with it, by
-- table_info_trigger, this node's triggers on it).
CREATE OR REPLACE FUNCTION londiste.global_remove_table(i_queue_name text, i_table_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
BEGIN
    DELETE FROM londiste.table_info WHERE queue_name = i_queue_name AND table_name = v_name;
    IF NOT FOUND THEN
        ret_code := 400;
        ret_note := 'Table not found: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Table removed: ' || v_name;
END
$$;
