-- pgq_node.promote_branch(queue): make this branch the root (takeover): its
-- queue takes inserts and is ticked locally again, from past the last tick it
-- got; its worker reads from itself, from the queue's last tick.
CREATE OR REPLACE FUNCTION pgq_node.promote_branch(i_queue_name text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n     record;
    v_top bigint;
BEGIN
    SELECT i.node_type, i.node_name, i.worker_name INTO n FROM pgq_node.node_info i
     WHERE i.queue_name = i_queue_name FOR UPDATE;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Node not initialized for queue: ' || i_queue_name;
        RETURN;
    END IF;
    IF n.node_type <> 'branch' THEN
        ret_code := 301;
        ret_note := 'Node not branch';
        RETURN;
    END IF;
    UPDATE pgq.queue SET queue_disable_insert = false, queue_external_ticker = false WHERE queue_name = i_queue_name;
    SELECT max(t.tick_id) INTO v_top FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
     WHERE q.queue_name = i_queue_name;
    PERFORM pgq.seq_setval(q.queue_tick_seq, v_top) FROM pgq.queue q WHERE q.queue_name = i_queue_name;
    UPDATE pgq_node.node_info SET node_type = 'root' WHERE queue_name = i_queue_name;
    UPDATE pgq_node.local_state SET provider_node = n.node_name, last_tick_id = v_top, uptodate = false
     WHERE queue_name = i_queue_name AND consumer_name = n.worker_name;
    ret_code := 200;
    ret_note := 'Branch node promoted to root';
END
$$;
