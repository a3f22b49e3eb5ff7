-- londiste.local_show_missing(queue): what the queue replicates that this
-- node does not: sequences (S), then tables (r).
CREATE OR REPLACE FUNCTION londiste.local_show_missing(i_queue_name text, OUT obj_kind text, OUT obj_name text)
RETURNS SETOF record LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT x.kind, x.name FROM (
        SELECT 'S'::text AS kind, s.seq_name AS name FROM londiste.seq_info s
         WHERE s.queue_name = i_queue_name AND NOT s.local
        UNION ALL
        SELECT 'r'::text, t.table_name FROM londiste.table_info t
         WHERE t.queue_name = i_queue_name AND NOT t.local) x
     ORDER BY x.kind, x.name;
END
$$;
