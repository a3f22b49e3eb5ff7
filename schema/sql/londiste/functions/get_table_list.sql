-- londiste.get_table_list(queue): the tables of the replication set as this
-- node knows them: local or not, copy state and snapshot, attributes, the
-- DDL a copy dropped, the copy's role and position, the destination table.
CREATE OR REPLACE FUNCTION londiste.get_table_list(i_queue_name text,
        OUT table_name text, OUT local boolean, OUT merge_state text, OUT custom_snapshot text,
        OUT table_attrs text, OUT dropped_ddl text, OUT copy_role text, OUT copy_pos integer, OUT dest_table text)
RETURNS SETOF record LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT t.table_name, t.local, t.merge_state, t.custom_snapshot, t.table_attrs, t.dropped_ddl,
           c.copy_role, c.copy_pos, t.dest_table
      FROM londiste.table_info t
     CROSS JOIN LATERAL londiste._coordinate_copy(t.queue_name, t.table_name) c
     WHERE t.queue_name = i_queue_name
     ORDER BY t.nr;
END
$$;
