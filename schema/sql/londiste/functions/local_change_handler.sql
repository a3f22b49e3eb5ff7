-- londiste.local_change_handler(queue, table, args, attrs): a local table's
-- handler changed: new attributes, and its triggers made again with the
-- handler's args.
CREATE OR REPLACE FUNCTION londiste.local_change_handler(i_queue_name text, i_table_name text,
        i_trg_args text[], i_table_attrs text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
    v_row  record;
    v_tgr  record;
BEGIN
    SELECT t.dest_table INTO v_row FROM londiste.table_info t
     WHERE t.queue_name = i_queue_name AND t.table_name = v_name AND t.local;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'no such local table: ' || v_name;
        RETURN;
    END IF;
    UPDATE londiste.table_info SET table_attrs = i_table_attrs
     WHERE queue_name = i_queue_name AND table_name = v_name;
    SELECT * INTO v_tgr FROM londiste.create_trigger(i_queue_name, v_name, i_trg_args, v_row.dest_table,
        (SELECT n.node_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name));
    IF v_tgr.ret_code > 299 THEN
        ret_code := v_tgr.ret_code;
        ret_note := v_tgr.ret_note;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Handler changed for table: ' || v_name;
END
$$;
