-- The structure of PgQ's core tables, one line per column, index and
-- constraint, for comparison with what adoption expects (pgq35.txt): an
-- installation that differs in any of them is not adopted.
SELECT line FROM (
    SELECT c.relname || ' column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace = 'pgq'::regnamespace
       AND c.relname IN ('queue', 'consumer', 'tick', 'subscription', 'event_template', 'retry_queue', 'failed_queue')
    UNION ALL
    SELECT c.relname || ' index ' || regexp_replace(pg_get_indexdef(i.indexrelid), '^CREATE (UNIQUE )?INDEX \S+ ', '\1')
      FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
     WHERE c.relnamespace = 'pgq'::regnamespace
       AND c.relname IN ('queue', 'consumer', 'tick', 'subscription', 'event_template', 'retry_queue', 'failed_queue')
    UNION ALL
    SELECT c.relname || ' constraint ' || pg_get_constraintdef(k.oid)
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
     WHERE c.relnamespace = 'pgq'::regnamespace
       AND c.relname IN ('queue', 'consumer', 'tick', 'subscription', 'event_template', 'retry_queue', 'failed_queue')
    UNION ALL
    SELECT 'sequence ' || c.relname
      FROM pg_class c
     WHERE c.relnamespace = 'pgq'::regnamespace AND c.relkind = 'S'
       AND c.relname IN ('batch_id_seq', 'queue_queue_id_seq', 'consumer_co_id_seq', 'subscription_sub_id_seq')
) AS s
ORDER BY line
