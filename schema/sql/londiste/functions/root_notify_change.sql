-- londiste.root_notify_change(queue, type, data): on the root, an event
-- about the replication set itself (londiste.add-table, remove-table,
-- update-seq, ...) for every node downstream.
CREATE OR REPLACE FUNCTION londiste.root_notify_change(i_queue_name text, i_ev_type text, i_ev_data text)
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name AND n.node_type = 'root') THEN
        RAISE EXCEPTION 'only root node can send events';
    END IF;
    PERFORM pgq.insert_event(i_queue_name, i_ev_type, i_ev_data);
    RETURN 1;
END
$$;
