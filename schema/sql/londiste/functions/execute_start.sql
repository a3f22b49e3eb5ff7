-- londiste.execute_start(queue, file, sql, expect root [, attrs]): a DDL
-- script is about to run on this node: recorded in applied_execute (a
-- file runs once per node), refused on a non-root when the caller expects
-- the root.
CREATE OR REPLACE FUNCTION londiste.execute_start(i_queue_name text, i_file_name text, i_sql text,
        i_expect_root boolean, i_attrs text, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    IF i_expect_root AND NOT pgq_node.is_root_node(i_queue_name) THEN
        ret_code := 401;
        ret_note := 'Node is not root node: ' || i_queue_name;
        RETURN;
    END IF;
    IF EXISTS (SELECT 1 FROM londiste.applied_execute a WHERE a.execute_file = i_file_name) THEN
        ret_code := 201;
        ret_note := 'EXECUTE: "' || i_file_name || '" already applied, skipping';
        RETURN;
    END IF;
    INSERT INTO londiste.applied_execute (queue_name, execute_file, execute_sql, execute_attrs)
    VALUES (i_queue_name, i_file_name, i_sql, i_attrs);
    ret_code := 200;
    ret_note := 'Executing: ' || i_file_name;
END
$$;

CREATE OR REPLACE FUNCTION londiste.execute_start(i_queue_name text, i_file_name text, i_sql text,
        i_expect_root boolean, OUT ret_code integer, OUT ret_note text)
RETURNS record LANGUAGE plpgsql AS $$
BEGIN
    SELECT f.ret_code, f.ret_note INTO ret_code, ret_note
      FROM londiste.execute_start(i_queue_name, i_file_name, i_sql, i_expect_root, NULL) f;
END
$$;
