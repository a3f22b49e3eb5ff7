-- londiste.local_remove_seq(queue, sequence): stop replicating the sequence
-- on this node; on the root it leaves the set (a londiste.remove-seq event
-- tells the nodes downstream), elsewhere it stays known, not local.
CREATE OR REPLACE FUNCTION londiste.local_remove_seq(i_queue_name text, i_seq_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_seq_name);
BEGIN
    IF pgq_node.is_root_node(i_queue_name) THEN
        DELETE FROM londiste.seq_info WHERE queue_name = i_queue_name AND seq_name = v_name AND local;
        IF NOT FOUND THEN
            ret_code := 400;
            ret_note := 'Sequence not found: ' || v_name;
            RETURN;
        END IF;
        PERFORM londiste.root_notify_change(i_queue_name, 'londiste.remove-seq', v_name);
    ELSE
        UPDATE londiste.seq_info SET local = false WHERE queue_name = i_queue_name AND seq_name = v_name AND local;
        IF NOT FOUND THEN
            ret_code := 404;
            ret_note := 'Sequence not found: ' || v_name;
            RETURN;
        END IF;
    END IF;
    ret_code := 200;
    ret_note := 'Sequence removed: ' || v_name;
END
$$;
