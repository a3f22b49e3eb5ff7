-- londiste._coordinate_copy(queue, table): for the parallel copies of a
-- merge leaf's partitions, which copy leads and where each waits. A node
-- that merges no queues has one copy per table: no role, position 0 (both
-- NULL for a table the queue does not have).
-- (The merge case is not written yet.)
CREATE OR REPLACE FUNCTION londiste._coordinate_copy(i_queue_name text, i_table_name text,
        OUT copy_role text, OUT copy_pos integer)
RETURNS record LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM londiste.table_info t WHERE t.queue_name = i_queue_name AND t.table_name = i_table_name) THEN
        copy_pos := 0;
    END IF;
END
$$;
