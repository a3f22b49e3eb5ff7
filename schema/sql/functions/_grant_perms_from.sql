-- pgq._grant_perms_from(src schema, src table, dst schema, dst table): grant on
-- dst every table privilege that roles other than the owner hold on src.
-- Returns 1.
CREATE OR REPLACE FUNCTION pgq._grant_perms_from(src_schema text, src_table text, dst_schema text, dst_table text)
RETURNS integer LANGUAGE plpgsql STRICT AS $$
DECLARE
    a record;
BEGIN
    FOR a IN
        SELECT x.privilege_type, x.grantee, x.is_grantable
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace,
               LATERAL aclexplode(c.relacl) x
         WHERE n.nspname = src_schema AND c.relname = src_table AND x.grantee <> c.relowner
         ORDER BY x.grantee, x.privilege_type
    LOOP
        EXECUTE format('GRANT %s ON %I.%I TO %s%s', a.privilege_type, dst_schema, dst_table,
                       CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                       CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    RETURN 1;
END
$$;
