-- londiste.list_obsolete_partitions(parent, retention, period): the
-- parent's partitions (inheriting tables) that ended more than retention ago.
CREATE OR REPLACE FUNCTION londiste.list_obsolete_partitions(i_parent_table text, i_retention_period interval,
        i_partition_period text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY
    SELECT x.name FROM (
        SELECT n.nspname::text || '.' || c.relname::text AS name
          FROM pg_catalog.pg_inherits i
          JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE i.inhparent = londiste.find_table_oid(londiste.make_fqname(i_parent_table))) x
     WHERE londiste.is_obsolete_partition(x.name, i_retention_period, i_partition_period)
     ORDER BY x.name;
END
$$;
