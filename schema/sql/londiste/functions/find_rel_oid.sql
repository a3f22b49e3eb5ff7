-- londiste.find_rel_oid(name, kind): the oid of the relation of that kind
-- (pg_class.relkind) named schema.name (as split_fqname splits it), or NULL.
CREATE OR REPLACE FUNCTION londiste.find_rel_oid(i_fqname text, i_kind text)
RETURNS oid LANGUAGE plpgsql STABLE AS $$
DECLARE
    p   record;
    res oid;
BEGIN
    SELECT * INTO p FROM londiste.split_fqname(i_fqname);
    SELECT c.oid INTO res
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = p.schema_part AND c.relname = p.name_part AND c.relkind = i_kind;
    RETURN res;
END
$$;
