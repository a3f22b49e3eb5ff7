-- pgq_node.upgrade_schema(): Skytools' in-place fixes of older pgq_node
-- tables; pgqgo's migrations do that work, so there is never anything left.
CREATE OR REPLACE FUNCTION pgq_node.upgrade_schema()
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    RETURN 0;
END
$$;
