-- pgq_node.set_consumer_uptodate(queue, consumer, uptodate): the consumer
-- acknowledges (true) the last change of its state.
CREATE OR REPLACE FUNCTION pgq_node.set_consumer_uptodate(i_queue_name text, i_consumer_name text,
        i_uptodate boolean, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    UPDATE pgq_node.local_state SET uptodate = i_uptodate
     WHERE queue_name = i_queue_name AND consumer_name = i_consumer_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'Consumer not known: ' || i_queue_name || '/' || i_consumer_name;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Consumer uptodate = ' || i_uptodate::integer;
END
$$;
