-- londiste.local_add_table(queue, table [, args [, attrs [, dest table]]]):
-- replicate the table on this node. On the root the table joins the set
-- (copy state ok at once) and a londiste.add-table event tells the nodes
-- downstream; elsewhere the set must have it already (global_add_table) and
-- it waits for its copy (state NULL; with expect_sync: ok). Its triggers
-- are made by create_trigger unless args has no_triggers; a destination
-- table takes the events' rows instead of the table itself.
CREATE OR REPLACE FUNCTION londiste.local_add_table(i_queue_name text, i_table_name text, i_trg_args text[],
        i_table_attrs text, i_dest_table text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
DECLARE
    v_name   text := londiste.make_fqname(i_table_name);
    v_dest   text := londiste.make_fqname(i_dest_table);
    v_type   text;
    v_row    record;
    v_tgr    record;
    v_args   text[] := coalesce(i_trg_args, '{}');
BEGIN
    SELECT n.node_type INTO v_type FROM pgq_node.node_info n WHERE n.queue_name = i_queue_name;
    IF NOT FOUND THEN
        ret_code := 400;
        ret_note := 'No such set: ' || i_queue_name;
        RETURN;
    END IF;
    IF 'merge_all' = ANY (v_args) AND 'no_merge' = ANY (v_args) THEN
        ret_code := 405;
        ret_note := 'Cannot use merge-all and no-merge together';
        RETURN;
    END IF;
    SELECT t.local INTO v_row FROM londiste.table_info t WHERE t.queue_name = i_queue_name AND t.table_name = v_name;
    IF FOUND AND v_row.local THEN
        ret_code := 200;
        ret_note := 'Table already added: ' || v_name;
        RETURN;
    END IF;
    IF londiste.find_table_oid(coalesce(v_dest, v_name)) IS NULL THEN
        ret_code := 404;
        ret_note := 'Table does not exist: ' || coalesce(v_dest, v_name);
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i
                    WHERE i.indrelid = londiste.find_table_oid(coalesce(v_dest, v_name)) AND i.indisprimary) THEN
        ret_code := 400;
        ret_note := 'Primary key missing on table: ' || coalesce(v_dest, v_name);
        RETURN;
    END IF;
    IF v_type = 'root' THEN
        IF v_row IS NULL THEN
            INSERT INTO londiste.table_info (queue_name, table_name, local, merge_state, table_attrs, dest_table)
            VALUES (i_queue_name, v_name, true, 'ok', i_table_attrs, v_dest);
        ELSE
            UPDATE londiste.table_info SET local = true, merge_state = 'ok', table_attrs = i_table_attrs, dest_table = v_dest
             WHERE queue_name = i_queue_name AND table_name = v_name;
        END IF;
        PERFORM londiste.root_notify_change(i_queue_name, 'londiste.add-table', v_name);
    ELSE
        IF v_row IS NULL THEN
            ret_code := 404;
            ret_note := 'Table not available on queue: ' || v_name;
            RETURN;
        END IF;
        UPDATE londiste.table_info
           SET local = true, table_attrs = i_table_attrs, dest_table = v_dest,
               merge_state = CASE WHEN 'expect_sync' = ANY (v_args) THEN 'ok' END
         WHERE queue_name = i_queue_name AND table_name = v_name;
    END IF;
    IF 'no_triggers' = ANY (v_args) THEN
        ret_code := 200;
        ret_note := 'Table added with no triggers: ' || v_name;
        RETURN;
    END IF;
    SELECT * INTO v_tgr FROM londiste.create_trigger(i_queue_name, v_name, v_args, v_dest, v_type);
    IF v_tgr.ret_code > 299 THEN
        ret_code := v_tgr.ret_code;
        ret_note := v_tgr.ret_note;
        RETURN;
    END IF;
    ret_code := 200;
    ret_note := 'Table added: ' || v_name || coalesce('(' || v_dest || ')', '');
END
$$;

CREATE OR REPLACE FUNCTION londiste.local_add_table(i_queue_name text, i_table_name text, i_trg_args text[],
        i_table_attrs text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.ret_code, f.ret_note INTO ret_code, ret_note
      FROM londiste.local_add_table(i_queue_name, i_table_name, i_trg_args, i_table_attrs, NULL) f;
END
$$;

CREATE OR REPLACE FUNCTION londiste.local_add_table(i_queue_name text, i_table_name text, i_trg_args text[],
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.ret_code, f.ret_note INTO ret_code, ret_note
      FROM londiste.local_add_table(i_queue_name, i_table_name, i_trg_args, NULL, NULL) f;
END
$$;

CREATE OR REPLACE FUNCTION londiste.local_add_table(i_queue_name text, i_table_name text,
        OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.ret_code, f.ret_note INTO ret_code, ret_note
      FROM londiste.local_add_table(i_queue_name, i_table_name, NULL, NULL, NULL) f;
END
$$;
