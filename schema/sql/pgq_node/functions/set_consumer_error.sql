-- pgq_node.set_consumer_error(queue, consumer, message): record the error a
-- cascaded consumer is stuck on (shown by status); an unknown consumer is
-- ignored.
CREATE OR REPLACE FUNCTION pgq_node.set_consumer_error(i_queue_name text, i_consumer_name text,
        i_error_msg text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgq_node.local_state SET cur_error = i_error_msg
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    IF NOT FOUND THEN
        ret_code := 101;
        ret_note := 'Consumer not known, ignoring: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    ret_code := 100;
    ret_note := 'Consumer ' || i_consumer_name || ' error = ' || i_error_msg; -- NULL for no message, as PgQ
END
$$;
