-- londiste.local_show_missing(queue): what this node could add: on the root,
-- the sequences and the tables (not yet in the set) of the database's own
-- schemas; elsewhere, what the set replicates and this node does not.
-- Sequences (S) first, then tables (r).
CREATE OR REPLACE FUNCTION londiste.local_show_missing(i_queue_name text, OUT obj_kind text, OUT obj_name text)
RETURNS SETOF record LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF pgq_node.is_root_node(i_queue_name) THEN
        RETURN QUERY
        SELECT x.kind, x.name FROM (
            SELECT CASE c.relkind WHEN 'S' THEN 'S' ELSE 'r' END::text AS kind,
                   n.nspname::text || '.' || c.relname::text AS name
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
             WHERE c.relkind IN ('r', 'S') AND c.relpersistence <> 't'
               AND n.nspname NOT IN ('information_schema', 'pgq', 'pgq_node', 'londiste', 'pgq_ext', 'pgq_coop')
               AND n.nspname NOT LIKE 'pg\_%') x
         WHERE x.kind = 'S'
            OR NOT EXISTS (SELECT 1 FROM londiste.table_info t
                            WHERE t.queue_name = i_queue_name AND t.table_name = x.name AND t.local)
         ORDER BY x.kind, x.name;
        RETURN;
    END IF;
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
