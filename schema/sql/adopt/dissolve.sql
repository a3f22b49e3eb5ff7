-- Detach every object of Skytools' extensions (londiste, pgq_coop, pgq_ext,
-- pgq_node, pgq: dependents first) and drop the then empty extensions: the
-- objects and their data stay, as plain objects, so a later DROP EXTENSION
-- or the removal of the Debian packages can no longer touch them. Tables
-- the extensions marked for pg_dump lose the mark and are dumped as
-- ordinary tables.
DO $pgqgo_dissolve$
DECLARE
    e record;
    o record;
BEGIN
    FOR e IN SELECT x.oid, x.extname::text AS extname FROM pg_catalog.pg_extension x
              WHERE x.extname IN ('londiste', 'pgq_coop', 'pgq_ext', 'pgq_node', 'pgq')
              ORDER BY array_position(ARRAY['londiste', 'pgq_coop', 'pgq_ext', 'pgq_node', 'pgq'], x.extname::text) LOOP
        FOR o IN SELECT (pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid)).*
                   FROM pg_catalog.pg_depend d
                  WHERE d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e' LOOP
            EXECUTE format('ALTER EXTENSION %I DROP %s %s', e.extname, o.type, o.identity);
        END LOOP;
        EXECUTE format('DROP EXTENSION %I', e.extname);
    END LOOP;
END
$pgqgo_dissolve$;
