-- londiste.root_check_seqs(queue [, buffer]): on the root, publish every
-- local sequence that has come within buffer (10000) of its last published
-- value: its value plus three buffers, stored and sent downstream as a
-- londiste.update-seq event, so subscribers stay ahead of the root.
CREATE OR REPLACE FUNCTION londiste.root_check_seqs(i_queue_name text, i_buffer bigint,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_type text;
    s      record;
    v_real bigint;
    v_new  bigint;
BEGIN
    SELECT n.node_type INTO v_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Queue not found: ' || i_queue_name;
        RETURN;
    ELSIF v_type <> 'root' THEN
        ret_code := 402;
        ret_note := 'Not a root node';
        RETURN;
    END IF;
    FOR s IN SELECT i.seq_name, i.last_value FROM londiste.seq_info i
              WHERE i.queue_name = i_queue_name AND i.local ORDER BY i.nr FOR UPDATE LOOP
        EXECUTE 'SELECT last_value FROM ' || londiste.quote_fqname(s.seq_name) INTO v_real;
        IF v_real + i_buffer >= s.last_value THEN
            v_new := v_real + 3 * i_buffer;
            UPDATE londiste.seq_info SET last_value = v_new WHERE queue_name = i_queue_name AND seq_name = s.seq_name;
            PERFORM pgq.insert_event(i_queue_name, 'londiste.update-seq', v_new::text, s.seq_name, NULL, NULL, NULL);
        END IF;
    END LOOP;
    ret_code := 100;
    ret_note := 'Sequences updated';
END
$$;

CREATE OR REPLACE FUNCTION londiste.root_check_seqs(i_queue_name text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.ret_code, f.ret_note INTO ret_code, ret_note FROM londiste.root_check_seqs(i_queue_name, 10000) f;
END
$$;
