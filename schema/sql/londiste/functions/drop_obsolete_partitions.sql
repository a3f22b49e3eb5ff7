-- londiste.drop_obsolete_partitions(parent, retention, period): drop the
-- partitions list_obsolete_partitions names; returns them.
CREATE OR REPLACE FUNCTION londiste.drop_obsolete_partitions(i_parent_table text, i_retention_period interval,
        i_partition_period text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    v_part text;
BEGIN
    FOR v_part IN SELECT * FROM londiste.list_obsolete_partitions(i_parent_table, i_retention_period, i_partition_period) LOOP
        EXECUTE 'DROP TABLE ' || londiste.quote_fqname(v_part);
        RETURN NEXT v_part;
    END LOOP;
END
$$;
