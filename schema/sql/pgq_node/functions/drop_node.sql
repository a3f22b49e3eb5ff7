-- pgq_node.drop_node(queue, node): remove a node from the queue's cascade.
-- This node itself: its queue, consumers, subscribers and cascade rows go.
-- Another node: it stops being a subscriber and a known location (on the
-- root the removal goes downstream as a pgq.unregister-location event).
CREATE OR REPLACE FUNCTION pgq_node.drop_node(i_queue_name text, i_node_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    n record;
    s record;
BEGIN
    SELECT i.node_type, i.node_name INTO n FROM pgq_node.node_info i WHERE i.queue_name = i_queue_name FOR UPDATE;
    IF FOUND AND n.node_name = i_node_name THEN
        FOR s IN SELECT si.subscriber_node FROM pgq_node.subscriber_info si WHERE si.queue_name = i_queue_name LOOP
            PERFORM pgq_node.unregister_subscriber(i_queue_name, s.subscriber_node);
        END LOOP;
        DELETE FROM pgq_node.local_state WHERE queue_name = i_queue_name;
        DELETE FROM pgq_node.node_info WHERE queue_name = i_queue_name;
        DELETE FROM pgq_node.node_location WHERE queue_name = i_queue_name;
        IF EXISTS (SELECT 1 FROM pgq.queue q WHERE q.queue_name = i_queue_name) THEN
            PERFORM pgq.drop_queue(i_queue_name, true);
        END IF;
    ELSE
        IF n.node_type = 'root' THEN
            PERFORM pgq.insert_event(i_queue_name, 'pgq.unregister-location', i_node_name, i_queue_name, NULL, NULL, NULL);
        END IF;
        PERFORM pgq_node.unregister_subscriber(i_queue_name, i_node_name);
        DELETE FROM pgq_node.node_location WHERE queue_name = i_queue_name AND node_name = i_node_name;
    END IF;
    ret_code := 200;
    ret_note := 'Node dropped: ' || i_node_name;
END
$$;
