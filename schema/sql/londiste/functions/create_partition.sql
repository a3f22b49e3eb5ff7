-- londiste.create_partition(parent, part, pkeys, field, time, period): make
-- the partition of parent (inheritance, as londiste's part handler uses it)
-- holding the period (hour, day, month, year) that contains time: the
-- parent's columns, defaults, constraints and indexes, a check on field for
-- the period, the primary key on pkeys when the parent has none, the
-- parent's triggers and grants. Returns 1 when made, 0 when it exists.
CREATE OR REPLACE FUNCTION londiste.create_partition(i_table text, i_part text, i_pkeys text, i_part_field text,
        i_part_time timestamptz, i_part_period text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    v_parent oid := londiste.quote_fqname(i_table)::regclass;
    v_part   text := londiste.quote_fqname(i_part);
    v_start  timestamptz;
    v_end    timestamptz;
    v_name   text := (londiste.split_fqname(i_part)).name_part;
    r        record;
BEGIN
    IF londiste.find_table_oid(londiste.make_fqname(i_part)) IS NOT NULL THEN
        RETURN 0;
    END IF;
    v_start := date_trunc(i_part_period, i_part_time);
    v_end := v_start + ('1 ' || i_part_period)::interval;
    EXECUTE format('CREATE TABLE %s (LIKE %s INCLUDING ALL) INHERITS (%s)', v_part, v_parent::regclass, v_parent::regclass);
    IF i_pkeys IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                                            WHERE i.indrelid = v_part::regclass AND i.indisprimary) THEN
        EXECUTE format('ALTER TABLE %s ADD PRIMARY KEY (%s)', v_part,
                       (SELECT string_agg(quote_ident(trim(k)), ', ') FROM unnest(string_to_array(i_pkeys, ',')) k));
    END IF;
    EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%I >= %L AND %I < %L)', v_part,
                   v_name || '_' || i_part_field || '_check', i_part_field, v_start, i_part_field, v_end);
    -- the parent's triggers
    FOR r IN SELECT pg_catalog.pg_get_triggerdef(t.oid) AS def FROM pg_catalog.pg_trigger t
              WHERE t.tgrelid = v_parent AND NOT t.tgisinternal ORDER BY t.tgname LOOP
        EXECUTE replace(r.def, ' ON ' || londiste.quote_fqname(londiste.make_fqname(i_table)) || ' ', ' ON ' || v_part || ' ');
    END LOOP;
    -- the parent's grants (the owner's with grant option)
    FOR r IN SELECT a.grantee, a.privilege_type, a.is_grantable, a.grantee = c.relowner AS own
               FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a
              WHERE c.oid = v_parent ORDER BY a.grantee = c.relowner DESC LOOP
        EXECUTE format('GRANT %s ON %s TO %s%s', r.privilege_type, v_part,
                       CASE WHEN r.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.grantee::regrole::text) END,
                       CASE WHEN r.is_grantable OR r.own THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    RETURN 1;
END
$$;
