-- londiste.drop_table_fkey(from table, name): drop a foreign key for a copy,
-- keeping it in pending_fkeys to restore later. 1 when dropped, 0 when there
-- was no such key.
CREATE OR REPLACE FUNCTION londiste.drop_table_fkey(i_from_table text, i_fkey_name text)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    f record;
BEGIN
    SELECT * INTO f FROM londiste.find_table_fkeys(i_from_table) k
     WHERE k.from_table = i_from_table AND k.fkey_name = i_fkey_name;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    INSERT INTO londiste.pending_fkeys (from_table, to_table, fkey_name, fkey_def)
    VALUES (f.from_table, f.to_table, f.fkey_name, f.fkey_def);
    EXECUTE 'alter table only ' || londiste.quote_fqname(i_from_table) || ' drop constraint '
        || pg_catalog.quote_ident(i_fkey_name);
    RETURN 1;
END
$$;
