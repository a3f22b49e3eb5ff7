-- The structure of a component schema's tables ($1: pgq_node or londiste),
-- one line per column and constraint, for comparison with what adoption
-- expects (pgq_node35.txt, londiste38.txt): tables that differ are not taken over.
SELECT line FROM (
    SELECT c.relname || ' column ' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
           || coalesce(' default ' || pg_get_expr(d.adbin, d.adrelid), '') AS line
      FROM pg_class c
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
     WHERE c.relnamespace = pg_catalog.to_regnamespace($1) AND c.relkind = 'r'
    UNION ALL
    SELECT c.relname || ' constraint ' || regexp_replace(pg_get_constraintdef(k.oid), '\s+', ' ', 'g')
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
     WHERE c.relnamespace = pg_catalog.to_regnamespace($1)
) AS s
ORDER BY line
