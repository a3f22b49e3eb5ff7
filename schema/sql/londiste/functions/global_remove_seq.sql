-- londiste.global_remove_seq(queue, sequence): the sequence is no longer
-- replicated through the queue.
CREATE OR REPLACE FUNCTION londiste.global_remove_seq(i_queue_name text, i_seq_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name text := londiste.make_fqname(i_seq_name);
BEGIN
    DELETE FROM londiste.seq_info WHERE queue_name = i_queue_name AND seq_name = v_name;
    IF NOT FOUND THEN
        ret_code := 400;
        ret_note := 'Sequence not found: ' || v_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Sequence removed: ' || v_name;
END
$$;
