-- pgq_node.demote_root(queue, step, new provider): the old root's part of a
-- switchover, in three steps run in order: 1 refuses new inserts and stops
-- local ticking; 2 waits for the writers still in flight and cuts a last
-- tick (returned); 3 makes the node a branch reading from the new root.
CREATE OR REPLACE FUNCTION pgq_node.demote_root(i_queue_name text, i_step integer, i_new_provider text,
        OUT ret_code integer, OUT ret_note text, OUT last_tick bigint)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
    q record;
BEGIN
    SELECT i.node_type, i.worker_name INTO n FROM pgq_node.node_info i WHERE i.queue_name = i_queue_name FOR UPDATE;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Node not initialized for queue: ' || i_queue_name;
        RETURN;
    END IF;
    IF n.node_type <> 'root' THEN
        ret_code := 301;
        ret_note := 'Node not root';
        RETURN;
    END IF;
    SELECT x.queue_id, x.queue_data_pfx, x.queue_tick_seq, x.queue_event_seq, x.queue_disable_insert INTO q
      FROM pgq.queue x WHERE x.queue_name = i_queue_name FOR UPDATE;
    IF i_step > 1 AND NOT q.queue_disable_insert THEN
        RAISE EXCEPTION 'steps in wrong order';
    END IF;
    IF i_step = 1 THEN
        UPDATE pgq.queue SET queue_disable_insert = true, queue_external_ticker = true WHERE queue_id = q.queue_id;
        ret_code := 200;
        ret_note := 'Step 1: Writing disabled for: ' || i_queue_name;
    ELSIF i_step = 2 THEN
        -- writers that got past the insert check before step 1 finish first
        EXECUTE 'LOCK TABLE ' || pgq.quote_fqname(q.queue_data_pfx) || ' IN EXCLUSIVE MODE';
        -- after a tick the daemon may still be cutting (pgq.ticker's lock)
        PERFORM pg_advisory_xact_lock(1885827444, q.queue_id);
        INSERT INTO pgq.tick (tick_queue, tick_id, tick_event_seq)
        VALUES (q.queue_id, nextval(q.queue_tick_seq), nextval(q.queue_event_seq))
        RETURNING tick_id INTO last_tick;
        ret_code := 200;
        ret_note := 'Step 2: Inserted last tick: ' || i_queue_name;
    ELSIF i_step = 3 THEN
        SELECT max(t.tick_id) INTO last_tick FROM pgq.tick t WHERE t.tick_queue = q.queue_id;
        UPDATE pgq_node.node_info SET node_type = 'branch' WHERE queue_name = i_queue_name;
        UPDATE pgq_node.local_state SET provider_node = i_new_provider, last_tick_id = last_tick, uptodate = false
         WHERE queue_name = i_queue_name AND consumer_name = n.worker_name;
        ret_code := 200;
        ret_note := 'Step 3: Demoted root to branch: ' || i_queue_name;
    ELSE
        RAISE EXCEPTION 'incorrect step number';
    END IF;
END
$$;
