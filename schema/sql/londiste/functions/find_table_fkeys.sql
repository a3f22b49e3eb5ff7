-- londiste.find_table_fkeys(table): the foreign keys from or to the table
-- (public when no schema is given), each with the statement that makes it
-- again.
CREATE OR REPLACE FUNCTION londiste.find_table_fkeys(i_table_name text)
RETURNS SETOF londiste.pending_fkeys LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT x.from_table, x.to_table, x.fkey_name, x.fkey_def FROM (
        SELECT n1.nspname::text || '.' || c1.relname::text AS from_table,
               n2.nspname::text || '.' || c2.relname::text AS to_table,
               k.conname::text AS fkey_name,
               'alter table only ' || londiste.quote_fqname(n1.nspname::text || '.' || c1.relname::text)
                   || ' add constraint ' || pg_catalog.quote_ident(k.conname::text) || ' '
                   || pg_catalog.pg_get_constraintdef(k.oid) AS fkey_def
          FROM pg_catalog.pg_constraint k
          JOIN pg_catalog.pg_class c1 ON c1.oid = k.conrelid
          JOIN pg_catalog.pg_namespace n1 ON n1.oid = c1.relnamespace
          JOIN pg_catalog.pg_class c2 ON c2.oid = k.confrelid
          JOIN pg_catalog.pg_namespace n2 ON n2.oid = c2.relnamespace
         WHERE k.contype = 'f') x
     WHERE x.from_table = londiste.make_fqname(i_table_name) OR x.to_table = londiste.make_fqname(i_table_name)
     ORDER BY x.from_table, x.fkey_name;
END
$$;
