-- londiste.version(): the londiste API level these functions implement.
CREATE OR REPLACE FUNCTION londiste.version()
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN '3.8';
END
$$;
