-- pgq.maint_operations(): the maintenance calls a ticker daemon should make
-- now, in the order to make them: step 1 for each queue whose rotation is due,
-- step 2 when a switch is due or pending, then the extra maintenance
-- functions queues ask for (queue_extra_maint), then, as PgQ 3.5 does when
-- those schemas exist, pgq_node.maint_watermark for each queue whose node is
-- a root and londiste.periodic_maintenance().
CREATE OR REPLACE FUNCTION pgq.maint_operations(OUT func_name text, OUT func_arg text)
RETURNS SETOF record LANGUAGE plpgsql AS $$
DECLARE
    q       record;
    f       text;
    v_step2 boolean := false;
BEGIN
    -- PgQ's order, which callers follow: step 1 of each queue whose rotation
    -- is due (queues by name), step 2, then the queues' extra maintenance
    -- (queues by name)
    FOR q IN SELECT queue_name, queue_switch_time, queue_rotation_period, queue_switch_step2
               FROM pgq.queue ORDER BY queue_name
    LOOP
        IF q.queue_switch_step2 IS NOT NULL AND q.queue_switch_time + q.queue_rotation_period <= now() THEN
            func_name := 'pgq.maint_rotate_tables_step1';
            func_arg := q.queue_name;
            v_step2 := true;
            RETURN NEXT;
        ELSIF q.queue_switch_step2 IS NULL THEN
            v_step2 := true;
        END IF;
    END LOOP;
    IF v_step2 THEN
        func_name := 'pgq.maint_rotate_tables_step2';
        func_arg := NULL;
        RETURN NEXT;
    END IF;
    FOR q IN SELECT queue_name, queue_extra_maint FROM pgq.queue
              WHERE queue_extra_maint IS NOT NULL ORDER BY queue_name
    LOOP
        FOREACH f IN ARRAY q.queue_extra_maint LOOP
            func_name := f;
            func_arg := q.queue_name;
            RETURN NEXT;
        END LOOP;
    END LOOP;
    -- cascades, when pgq_node is there (a Skytools database adopted with its
    -- pgq_node, or pgqgo's own): the watermark of each queue this node is the
    -- root of; then londiste's periodic work, when londiste is there
    IF to_regprocedure('pgq_node.maint_watermark(text)') IS NOT NULL
       AND to_regclass('pgq_node.node_info') IS NOT NULL THEN
        FOR q IN EXECUTE 'SELECT x.queue_name FROM pgq_node.node_info n JOIN pgq.queue x ON x.queue_name = n.queue_name
                           WHERE n.node_type = ''root'' ORDER BY x.queue_id'
        LOOP
            func_name := 'pgq_node.maint_watermark';
            func_arg := q.queue_name;
            RETURN NEXT;
        END LOOP;
    END IF;
    IF to_regprocedure('londiste.periodic_maintenance()') IS NOT NULL THEN
        func_name := 'londiste.periodic_maintenance';
        func_arg := NULL;
        RETURN NEXT;
    END IF;
END
$$;
