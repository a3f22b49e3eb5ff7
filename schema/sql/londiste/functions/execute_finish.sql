-- londiste.execute_finish(queue, file): the script ran; on the root it goes
-- downstream as an EXECUTE event (data: the SQL, extra1: the file, extra2:
-- its attributes), at this point of the queue on every node.
CREATE OR REPLACE FUNCTION londiste.execute_finish(i_queue_name text, i_file_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    a record;
BEGIN
    SELECT x.execute_sql, x.execute_attrs INTO a FROM londiste.applied_execute x WHERE x.execute_file = i_file_name;
    IF NOT FOUND THEN
        ret_code := 404;
        ret_note := 'execute_file called without execute_start';
        RETURN;
    END IF;
    IF pgq_node.is_root_node(i_queue_name) THEN
        PERFORM pgq.insert_event(i_queue_name, 'EXECUTE', a.execute_sql, i_file_name, a.execute_attrs, NULL, NULL);
    END IF;
    ret_code := 200;
    ret_note := 'Execute finished: ' || i_file_name;
END
$$;
