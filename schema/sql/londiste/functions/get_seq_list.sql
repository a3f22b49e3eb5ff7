-- londiste.get_seq_list(queue): the sequences replicated through the queue,
-- their last values, and whether this node replicates each.
CREATE OR REPLACE FUNCTION londiste.get_seq_list(i_queue_name text,
        OUT seq_name text, OUT last_value bigint, OUT local boolean)
RETURNS SETOF record LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY SELECT s.seq_name, s.last_value, s.local FROM londiste.seq_info s
                  WHERE s.queue_name = i_queue_name ORDER BY s.nr;
END
$$;
