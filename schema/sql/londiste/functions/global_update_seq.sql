-- londiste.global_update_seq(queue, sequence, value): the sequence's value
-- on the root, as it travels down the cascade; a node that replicates the
-- sequence locally (not the root) moves its own sequence there too.
CREATE OR REPLACE FUNCTION londiste.global_update_seq(i_queue_name text, i_seq_name text, i_value bigint,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name  text := londiste.make_fqname(i_seq_name);
    v_local boolean;
BEGIN
    UPDATE londiste.seq_info SET last_value = i_value
     WHERE queue_name = i_queue_name AND seq_name = v_name
    RETURNING local INTO v_local;
    IF NOT FOUND THEN
        -- the same sequence may be added by a worker and an admin at once
        INSERT INTO londiste.seq_info (queue_name, seq_name, last_value) VALUES (i_queue_name, v_name, i_value)
            ON CONFLICT (queue_name, seq_name) DO UPDATE SET last_value = excluded.last_value
        RETURNING local INTO v_local;
    END IF;
    IF v_local AND NOT EXISTS (SELECT 1 FROM pgq_node.node_info n
                                WHERE n.queue_name = i_queue_name AND n.node_type = 'root') THEN
        PERFORM pg_catalog.setval(londiste.quote_fqname(v_name), i_value);
    END IF;
    ret_code := 200;
    ret_note := 'Sequence updated';
END
$$;
