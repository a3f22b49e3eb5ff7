-- londiste._coordinate_copy(queue, table): for the parallel copies of a
-- merge leaf's partitions, which copy leads and where each waits. A node
-- that merges no queues has one copy per table: no role, position 0.
-- (The merge case is not written yet.)
CREATE OR REPLACE FUNCTION londiste._coordinate_copy(i_queue_name text, i_table_name text,
        OUT copy_role text, OUT copy_pos integer)
RETURNS record LANGUAGE plpgsql STABLE AS $$
BEGIN
    copy_pos := 0;
END
$$;
