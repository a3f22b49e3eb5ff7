-- pgq_node.version(): the pgq_node API level these functions implement.
CREATE OR REPLACE FUNCTION pgq_node.version()
RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    RETURN '3.5';
END
$$;
