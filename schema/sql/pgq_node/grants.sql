-- pgq_node grants, as Skytools' pgq_node 3.5 has them: the tables readable by
-- the three PgQ roles and writable by pgq_admin; the functions by role
-- (reading and a subscriber's own calls for pgq_reader, a worker's for
-- pgq_writer, everything for pgq_admin); version(), is_root_node() and
-- is_leaf_node() for PUBLIC.
DO $grants$
DECLARE
    reader text[] := ARRAY['get_consumer_info(text)', 'get_consumer_state(text,text)', 'get_node_info(text)',
        'get_queue_locations(text)', 'get_subscriber_info(text)', 'register_subscriber(text,text,text,bigint)',
        'set_subscriber_watermark(text,text,bigint)', 'unregister_subscriber(text,text)'];
    writer text[] := ARRAY['change_consumer_provider(text,text,text)', 'register_consumer(text,text,text,bigint)',
        'set_consumer_completed(text,text,bigint)', 'set_consumer_error(text,text,text)',
        'set_consumer_paused(text,text,boolean)', 'set_consumer_uptodate(text,text,boolean)',
        'unregister_consumer(text,text)'];
    admin text[] := ARRAY['create_node(text,text,text,text,text,bigint,text)', 'demote_root(text,integer,text)',
        'drop_node(text,text)', 'get_worker_state(text)', 'maint_watermark(text)', 'promote_branch(text)',
        'register_location(text,text,text,boolean)', 'set_global_watermark(text,bigint)',
        'set_node_attrs(text,text)', 'set_partition_watermark(text,text,bigint)', 'unregister_location(text,text)',
        'upgrade_schema()'];
    f text;
BEGIN
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA pgq_node FROM PUBLIC;
    GRANT USAGE ON SCHEMA pgq_node TO PUBLIC;
    GRANT EXECUTE ON FUNCTION pgq_node.version(), pgq_node.is_root_node(text), pgq_node.is_leaf_node(text) TO PUBLIC;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_reader') THEN
        FOREACH f IN ARRAY reader LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION pgq_node.' || f || ' TO pgq_reader';
        END LOOP;
        GRANT SELECT ON ALL TABLES IN SCHEMA pgq_node TO pgq_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_writer') THEN
        FOREACH f IN ARRAY reader || writer LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION pgq_node.' || f || ' TO pgq_writer';
        END LOOP;
        GRANT SELECT ON ALL TABLES IN SCHEMA pgq_node TO pgq_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        FOREACH f IN ARRAY reader || writer || admin LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION pgq_node.' || f || ' TO pgq_admin';
        END LOOP;
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA pgq_node TO pgq_admin;
    END IF;
END
$grants$;
