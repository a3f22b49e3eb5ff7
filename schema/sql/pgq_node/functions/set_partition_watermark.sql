-- pgq_node.set_partition_watermark(combined queue, part queue, tick): on a
-- merge node, the position up to which a part queue has been merged into the
-- combined queue (a pgq.tick-id event): kept as the part's watermark
-- consumer on the combined queue, .<part>.watermark.
CREATE OR REPLACE FUNCTION pgq_node.set_partition_watermark(i_combined_queue_name text, i_part_queue_name text,
        i_watermark bigint, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    v_name text := '.' || i_part_queue_name || '.watermark';
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pgq_node.node_info n JOIN pgq.queue q ON q.queue_name = n.queue_name
                    WHERE n.queue_name = i_part_queue_name AND n.combined_queue = i_combined_queue_name) THEN
        ret_code := 201;
        ret_note := 'Part-queue does not exist';
        RETURN;
    END IF;
    PERFORM pgq.register_consumer_at(i_combined_queue_name, v_name, i_watermark);
    ret_code := 200;
    ret_note := 'Ok';
END
$$;
