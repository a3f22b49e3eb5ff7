-- londiste.restore_table_fkey(from table, name [, lazy]): make a dropped
-- foreign key again and forget it (''); lazy: return the statement that
-- makes it NOT VALID, for the caller to run, and keep it pending.
CREATE OR REPLACE FUNCTION londiste.restore_table_fkey(i_from_table text, i_fkey_name text, i_lazy boolean DEFAULT false)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_def text;
BEGIN
    SELECT p.fkey_def INTO v_def FROM londiste.pending_fkeys p
     WHERE p.from_table = i_from_table AND p.fkey_name = i_fkey_name;
    IF NOT FOUND THEN
        RETURN '';
    END IF;
    IF i_lazy THEN
        RETURN v_def || ' not valid';
    END IF;
    EXECUTE v_def;
    DELETE FROM londiste.pending_fkeys WHERE from_table = i_from_table AND fkey_name = i_fkey_name;
    RETURN '';
END
$$;
