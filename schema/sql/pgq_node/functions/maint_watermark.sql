-- pgq_node.maint_watermark(queue): the ticker's maintenance on a root: when
-- the global watermark has not moved for five minutes (no worker is moving
-- it), move it. Returns 1 when it did.
CREATE OR REPLACE FUNCTION pgq_node.maint_watermark(i_queue_name text)
RETURNS integer LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_lag interval;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name AND n.node_type = 'root') THEN
        RETURN 0;
    END IF;
    SELECT c.lag INTO v_lag FROM pgq.get_consumer_info(i_queue_name, '.global_watermark') c;
    IF v_lag IS NULL OR v_lag < interval '5 minutes' THEN
        RETURN 0;
    END IF;
    PERFORM pgq_node.set_global_watermark(i_queue_name, NULL);
    RETURN 1;
END
$$;
