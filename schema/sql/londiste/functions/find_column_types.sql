-- londiste.find_column_types(table): one letter per column, k for the
-- primary key's and v for the others, key columns first (each group in
-- column order); '' for a table that does not exist.
CREATE OR REPLACE FUNCTION londiste.find_column_types(tbl text)
RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE
    res text;
BEGIN
    SELECT pg_catalog.string_agg(CASE WHEN k.is_key THEN 'k' ELSE 'v' END, '' ORDER BY k.is_key DESC, a.attnum) INTO res
      FROM pg_catalog.pg_attribute a
     CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                         WHERE i.indrelid = a.attrelid AND i.indisprimary
                                           AND a.attnum = ANY (i.indkey)) AS is_key) k
     WHERE a.attrelid = londiste.find_table_oid(tbl) AND a.attnum > 0 AND NOT a.attisdropped;
    RETURN coalesce(res, '');
END
$$;
