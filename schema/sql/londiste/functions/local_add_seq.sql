-- londiste.local_add_seq(queue, sequence): replicate the sequence on this
-- node. On the root it joins the set and is published at once
-- (root_check_seqs); elsewhere the set must have it (global_update_seq), and
-- the local sequence is moved to its last published value.
CREATE OR REPLACE FUNCTION londiste.local_add_seq(i_queue_name text, i_seq_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_seq_name);
    v_root boolean := pgq_node.is_root_node(i_queue_name);
    s      record;
BEGIN
    IF londiste.find_seq_oid(v_name) IS NULL THEN
        ret_code := 400;
        ret_note := 'Sequence not found: ' || v_name;
        RETURN;
    END IF;
    SELECT i.local, i.last_value INTO s FROM londiste.seq_info i
     WHERE i.queue_name = i_queue_name AND i.seq_name = v_name FOR UPDATE;
    IF FOUND AND s.local THEN
        ret_code := 201;
        ret_note := 'Sequence already added: ' || v_name;
        RETURN;
    END IF;
    IF v_root THEN
        IF s IS NULL THEN
            INSERT INTO londiste.seq_info (queue_name, seq_name, local, last_value) VALUES (i_queue_name, v_name, true, 0);
        ELSE
            UPDATE londiste.seq_info SET local = true WHERE queue_name = i_queue_name AND seq_name = v_name;
        END IF;
        PERFORM londiste.root_check_seqs(i_queue_name);
    ELSE
        IF s IS NULL THEN
            ret_code := 404;
            ret_note := 'Unknown sequence: ' || v_name;
            RETURN;
        END IF;
        UPDATE londiste.seq_info SET local = true WHERE queue_name = i_queue_name AND seq_name = v_name;
        PERFORM pg_catalog.setval(londiste.quote_fqname(v_name), s.last_value);
    END IF;
    ret_code := 200;
    ret_note := 'Sequence added: ' || v_name;
END
$$;
