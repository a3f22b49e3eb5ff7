-- londiste.global_add_table(queue, table): the table is replicated through
-- the queue somewhere in the cascade (a row not yet local to this node),
-- kept under its name with the schema.
CREATE OR REPLACE FUNCTION londiste.global_add_table(i_queue_name text, i_table_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_table_name);
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name) THEN
        ret_code := 400;
        ret_note := 'No such queue: ' || i_queue_name;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM londiste.table_info t WHERE t.queue_name = i_queue_name AND t.table_name = v_name) THEN
        ret_code := 200;
        ret_note := 'Table already added: ' || v_name;
        RETURN;
    END IF;
    -- a worker applying the root's londiste.add-table and an admin syncing
    -- the set may add the same table at once: the second finds it added
    INSERT INTO londiste.table_info (queue_name, table_name) VALUES (i_queue_name, v_name)
        ON CONFLICT (queue_name, table_name) DO NOTHING;
    IF NOT FOUND THEN
        ret_code := 200;
        ret_note := 'Table already added: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Table added: ' || i_table_name; -- the name as given, as londiste does
END
$$;
