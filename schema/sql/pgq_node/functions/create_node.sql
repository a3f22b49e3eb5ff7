-- pgq_node.create_node(queue, type, node, worker, provider, global
-- watermark, combined queue): make this node a member of the queue's
-- cascade. A root gets the queue (made if missing) and its .global_watermark
-- consumer; a branch gets the queue too, ticked from upstream (external
-- ticker, no local inserts), starting at the global watermark; a leaf has no
-- queue of its own. The worker is registered as a cascaded consumer reading
-- from the provider (on the root: from itself). The node's own location
-- must be registered first.
CREATE OR REPLACE FUNCTION pgq_node.create_node(i_queue_name text, i_node_type text, i_node_name text,
        i_worker_name text, i_provider_name text, i_global_watermark bigint, i_combined_queue text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_pos  bigint;
    v_res  record;
BEGIN
    IF EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name) THEN
        ret_code := 401;
        ret_note := 'Node already initialized';
        RETURN;
    END IF;
    IF i_node_type IN ('branch', 'leaf') AND i_provider_name IS NULL THEN
        ret_code := 401;
        ret_note := 'provider not set for ' || i_node_type;
        RETURN;
    END IF;
    IF i_node_type = 'branch' AND i_global_watermark IS NULL THEN
        ret_code := 401;
        ret_note := 'global watermark not set for branch';
        RETURN;
    END IF;
    IF i_node_type = 'root' THEN
        PERFORM pgq.create_queue(i_queue_name);
        SELECT max(t.tick_id) INTO v_pos
          FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue WHERE q.queue_name = i_queue_name;
        PERFORM pgq.register_consumer(i_queue_name, '.global_watermark');
    ELSIF i_node_type = 'branch' THEN
        PERFORM pgq.create_queue(i_queue_name);
        UPDATE pgq.queue SET queue_external_ticker = true, queue_disable_insert = true WHERE queue_name = i_queue_name;
        IF NOT EXISTS (SELECT 1 FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
                        WHERE q.queue_name = i_queue_name AND t.tick_id = i_global_watermark) THEN
            PERFORM pgq.ticker(i_queue_name, i_global_watermark, now(), pgq.seq_getval(q.queue_event_seq))
               FROM pgq.queue q WHERE q.queue_name = i_queue_name;
        END IF;
        PERFORM pgq.register_consumer_at(i_queue_name, '.global_watermark', i_global_watermark);
        v_pos := i_global_watermark;
    ELSE
        v_pos := i_global_watermark;
    END IF;
    INSERT INTO pgq_node.node_info (queue_name, node_type, node_name, worker_name, combined_queue)
    VALUES (i_queue_name, i_node_type, i_node_name, i_worker_name, i_combined_queue);
    SELECT f.ret_code, f.ret_note INTO v_res
      FROM pgq_node.register_consumer(i_queue_name, i_worker_name, coalesce(i_provider_name, i_node_name), v_pos) f;
    IF v_res.ret_code >= 300 THEN
        ret_code := v_res.ret_code;
        ret_note := v_res.ret_note;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Node "' || i_node_name || '" initialized for queue "' || i_queue_name || '" with type "' || i_node_type || '"';
END
$$;
