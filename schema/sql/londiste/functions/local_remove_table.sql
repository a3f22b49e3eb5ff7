-- londiste.local_remove_table(queue, table): stop replicating the table on
-- this node: its triggers go; on the root it leaves the set (a
-- londiste.remove-table event tells the nodes downstream), elsewhere it stays
-- known to the set, not local.
CREATE OR REPLACE FUNCTION londiste.local_remove_table(i_queue_name text, i_table_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
    v_row  record;
BEGIN
    SELECT t.dest_table INTO v_row FROM londiste.table_info t
     WHERE t.queue_name = i_queue_name AND t.table_name = v_name AND t.local;
    IF NOT FOUND THEN
        ret_code := 400;
        ret_note := 'Table not found: ' || v_name;
        RETURN;
    END IF;
    PERFORM londiste.drop_table_triggers(i_queue_name, coalesce(v_row.dest_table, v_name));
    IF pgq_node.is_root_node(i_queue_name) THEN
        DELETE FROM londiste.table_info WHERE queue_name = i_queue_name AND table_name = v_name;
        PERFORM londiste.root_notify_change(i_queue_name, 'londiste.remove-table', v_name);
    ELSE
        UPDATE londiste.table_info
           SET local = false, merge_state = NULL, custom_snapshot = NULL, table_attrs = NULL,
               dropped_ddl = NULL, dest_table = NULL
         WHERE queue_name = i_queue_name AND table_name = v_name;
    END IF;
    ret_code := 200;
    ret_note := 'Table removed: ' || v_name;
END
$$;
