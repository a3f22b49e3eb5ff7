-- londiste grants, as Skytools' londiste 3.8 has them: its roles
-- londiste_reader (a pgq_reader) and londiste_writer (a pgq_admin), made
-- when missing and when the installing role may; the tables readable by
-- everyone and writable by pgq_admin; the name helpers for PUBLIC; the table
-- lists for both roles; the rest for londiste_writer (and the maintenance
-- also for pgq_admin). local_change_handler stays the owner's, as in
-- Skytools.
DO $grants$
DECLARE
    r       text;
    f       text;
    public_ text[] := ARRAY['find_column_types(text)', 'find_rel_oid(text,text)', 'find_seq_oid(text)',
        'find_table_fkeys(text)', 'find_table_oid(text)', 'is_replica_func(oid)', 'make_fqname(text)',
        'quote_fqname(text)', 'split_fqname(text)', 'version()'];
    reader  text[] := ARRAY['_coordinate_copy(text,text)', 'get_seq_list(text)', 'get_table_list(text)'];
    maint   text[] := ARRAY['periodic_maintenance()', 'root_check_seqs(text)', 'root_check_seqs(text,bigint)'];
    writer  text[] := ARRAY['create_partition(text,text,text,text,timestamptz,text)',
        'create_trigger(text,text,text[],text,text)', 'drop_obsolete_partitions(text,interval,text)',
        'drop_table_fkey(text,text)', 'drop_table_triggers(text,text)', 'execute_finish(text,text)',
        'execute_start(text,text,text,boolean)', 'execute_start(text,text,text,boolean,text)',
        'get_table_pending_fkeys(text)', 'get_valid_pending_fkeys(text)', 'global_add_table(text,text)',
        'global_remove_seq(text,text)', 'global_remove_table(text,text)', 'global_update_seq(text,text,bigint)',
        'is_obsolete_partition(text,interval,text)', 'list_obsolete_partitions(text,interval,text)',
        'local_add_seq(text,text)', 'local_add_table(text,text)', 'local_add_table(text,text,text[])',
        'local_add_table(text,text,text[],text)', 'local_add_table(text,text,text[],text,text)',
        'local_remove_seq(text,text)', 'local_remove_table(text,text)', 'local_set_table_attrs(text,text,text)',
        'local_set_table_state(text,text,text,text)', 'local_set_table_struct(text,text,text)',
        'local_show_missing(text)', 'restore_table_fkey(text,text,boolean)', 'root_notify_change(text,text,text)',
        'set_session_replication_role(text,boolean)', 'table_info_trigger()', 'upgrade_schema()'];
BEGIN
    FOREACH r IN ARRAY ARRAY['londiste_reader', 'londiste_writer'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- made meanwhile by an install in another database of the cluster
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'pgqgo: role % does not exist and cannot be created by %; its grants are skipped', r, current_user;
            END;
        END IF;
    END LOOP;
    FOR r, f IN VALUES ('londiste_reader', 'pgq_reader'), ('londiste_writer', 'pgq_admin') LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = f)
           AND NOT pg_catalog.pg_has_role(r, f, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', f, r);
            EXCEPTION WHEN unique_violation THEN
                NULL; -- granted meanwhile by an install in another database
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'pgqgo: cannot make % a member of %', r, f;
            END;
        END IF;
    END LOOP;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA londiste FROM PUBLIC;
    GRANT USAGE ON SCHEMA londiste TO PUBLIC;
    FOREACH f IN ARRAY public_ LOOP
        EXECUTE 'GRANT EXECUTE ON FUNCTION londiste.' || f || ' TO PUBLIC';
    END LOOP;
    GRANT SELECT ON londiste.table_info, londiste.seq_info, londiste.pending_fkeys, londiste.applied_execute TO PUBLIC;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'londiste_reader') THEN
        FOREACH f IN ARRAY reader LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION londiste.' || f || ' TO londiste_reader';
        END LOOP;
        GRANT SELECT ON londiste.table_info, londiste.seq_info, londiste.pending_fkeys, londiste.applied_execute TO londiste_reader;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'londiste_writer') THEN
        FOREACH f IN ARRAY reader || maint || writer LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION londiste.' || f || ' TO londiste_writer';
        END LOOP;
        GRANT USAGE ON SEQUENCE londiste.table_info_nr_seq, londiste.seq_info_nr_seq TO londiste_writer;
    END IF;
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin') THEN
        FOREACH f IN ARRAY maint LOOP
            EXECUTE 'GRANT EXECUTE ON FUNCTION londiste.' || f || ' TO pgq_admin';
        END LOOP;
        GRANT SELECT, INSERT, UPDATE, DELETE ON londiste.table_info, londiste.seq_info, londiste.pending_fkeys,
            londiste.applied_execute TO pgq_admin;
    END IF;
END
$grants$;
