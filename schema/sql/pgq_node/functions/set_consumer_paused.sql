-- pgq_node.set_consumer_paused(queue, consumer, paused): pause or resume a
-- cascaded consumer; the change is not acknowledged (uptodate) until the
-- consumer sees it.
CREATE OR REPLACE FUNCTION pgq_node.set_consumer_paused(i_queue_name text, i_consumer_name text,
        i_paused boolean, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_was boolean;
BEGIN
    SELECT s.paused INTO v_was FROM pgq_node.local_state s
     WHERE s.queue_name = i_queue_name AND s.consumer_name = i_consumer_name FOR UPDATE;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Unknown consumer: ' || i_consumer_name;
        RETURN;
    END IF;
    IF v_was = i_paused THEN
        ret_code := 201;
        ret_note := 'Consumer ' || i_consumer_name || ' already ' || CASE WHEN i_paused THEN 'paused' ELSE 'resumed' END;
        RETURN;
    END IF;
    UPDATE pgq_node.local_state SET paused = i_paused, uptodate = false
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    ret_code := 200;
    ret_note := 'Consumer ' || i_consumer_name || ' tagged as ' || CASE WHEN i_paused THEN 'paused' ELSE 'resumed' END;
END
$$;
