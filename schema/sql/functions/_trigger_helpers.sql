-- Shared machinery of the change-capture triggers (pgq.logutriga,
-- pgq.sqltriga, pgq.jsontriga). Their output must be byte for byte what
-- Skytools' C triggers produce; see ../shared/reference/triggers.md and the
-- differential tests in schema/triggers_test.go.

-- pgq._urlencode(text): PgQ's urlencoding: A-Z a-z 0-9 _ . - kept, space as
-- '+', every other byte of the UTF-8 text as %xx with lowercase hex.
CREATE OR REPLACE FUNCTION pgq._urlencode(s text)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    b   bytea;
    out text := '';
    c   integer;
BEGIN
    IF s ~ '^[A-Za-z0-9_.-]*$' THEN
        RETURN s;
    END IF;
    b := convert_to(s, 'UTF8');
    FOR i IN 0 .. length(b) - 1 LOOP
        c := get_byte(b, i);
        IF (c BETWEEN 48 AND 57) OR (c BETWEEN 65 AND 90) OR (c BETWEEN 97 AND 122) OR c IN (45, 46, 95) THEN
            out := out || chr(c);
        ELSIF c = 32 THEN
            out := out || '+';
        ELSE
            out := out || '%' || lpad(to_hex(c), 2, '0');
        END IF;
    END LOOP;
    RETURN out;
END
$$;

-- pgq._trigger_args(args, tg_when, tg_op, table): parse a trigger's
-- arguments (queue name first) and apply the rules that need nothing else:
-- under session_replication_role = local the triggers do nothing at all (the
-- result is all NULL), deny refuses the change, SKIP needs a BEFORE trigger.
-- Fails like the C triggers on a missing queue or an unknown argument.
CREATE OR REPLACE FUNCTION pgq._trigger_args(args text[], tg_when text, tg_op text, tbl text,
        OUT queue text, OUT skip boolean, OUT backup boolean, OUT deny boolean,
        OUT ignore_cols text[], OUT pkey_cols text[], OUT when_expr text, OUT overrides text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    a text;
BEGIN
    IF current_setting('session_replication_role') = 'local' THEN
        RETURN; -- changes that must not be replicated
    END IF;
    IF coalesce(array_length(args, 1), 0) < 1 THEN
        RAISE EXCEPTION 'pgq trigger must have destination queue as argument' USING ERRCODE = 'XX000';
    END IF;
    -- TG_ARGV counts from 0: go by the array's own bounds
    queue := args[array_lower(args, 1)];
    skip := false; backup := false; deny := false;
    overrides := ARRAY[NULL, NULL, NULL, NULL, NULL, NULL]::text[]; -- ev_type, ev_data, ev_extra1..4
    FOR i IN array_lower(args, 1) + 1 .. array_upper(args, 1) LOOP
        a := args[i];
        IF a = 'SKIP' THEN
            skip := true;
        ELSIF a = 'backup' THEN
            backup := true;
        ELSIF a = 'deny' THEN
            deny := true;
        ELSIF a LIKE 'ignore=%' THEN
            ignore_cols := string_to_array(substr(a, 8), ',');
        ELSIF a LIKE 'pkey=%' THEN
            pkey_cols := string_to_array(substr(a, 6), ',');
        ELSIF a LIKE 'when=%' THEN
            when_expr := substr(a, 6);
        ELSIF a LIKE 'ev\_type=%' THEN
            overrides[1] := substr(a, 9);
        ELSIF a LIKE 'ev\_data=%' THEN
            overrides[2] := substr(a, 9);
        ELSIF a ~ '^ev_extra[1-4]=' THEN
            overrides[2 + substr(a, 9, 1)::integer] := substr(a, 11);
        ELSE
            RAISE EXCEPTION 'bad param to pgq trigger' USING ERRCODE = 'XX000';
        END IF;
    END LOOP;
    IF deny THEN
        RAISE EXCEPTION 'Table ''%'' to queue ''%'': change not allowed (%)', tbl, queue, tg_op USING ERRCODE = 'XX000';
    END IF;
    IF skip AND tg_when <> 'BEFORE' THEN
        RAISE EXCEPTION 'SKIP does not work in AFTER trigger.' USING ERRCODE = 'XX000';
    END IF;
END
$$;

-- pgq._trigger_columns(table): the table's live columns in attnum order, with
-- whether each is in the primary key, and the key in index order.
CREATE OR REPLACE FUNCTION pgq._trigger_columns(tbl oid, pkey_override text[],
        OUT names text[], OUT types oid[], OUT is_pkey boolean[], OUT pkey text[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    SELECT array_agg(a.attname::text ORDER BY a.attnum), array_agg(a.atttypid ORDER BY a.attnum),
           array_agg(CASE WHEN pkey_override IS NULL THEN a.attnum = ANY (i.indkey)
                          ELSE a.attname::text = ANY (pkey_override) END ORDER BY a.attnum),
           coalesce(pkey_override,
                    array_agg(a.attname::text ORDER BY array_position(i.indkey::int2[], a.attnum))
                        FILTER (WHERE a.attnum = ANY (i.indkey)),
                    '{}')
      INTO names, types, is_pkey, pkey
      FROM pg_attribute a
      LEFT JOIN pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
     WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped;
END
$$;


-- pgq._record_fields(record text): split a row's text form (ROW::text, as
-- record_out writes it: every column through its type's output function,
-- dropped columns left out) into one text per column, NULL for NULL. Faster
-- than a dynamic query per row: one regular-expression pass in C.
CREATE OR REPLACE FUNCTION pgq._record_fields(rec text)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    -- PL/pgSQL so the plan is cached (an SQL function here is planned per call)
    RETURN ARRAY(
        SELECT CASE
                   WHEN m[1] = '' THEN NULL
                   WHEN left(m[1], 1) = '"' THEN
                       replace(regexp_replace(substr(m[1], 2, length(m[1]) - 2), '\\(.)', '\1', 'g'), '""', '"')
                   ELSE m[1]
               END
          FROM regexp_matches(rec, '[(,]("(?:[^"\\]|""|\\.)*"|[^,()"]*)', 'g') WITH ORDINALITY AS x(m, ord)
         ORDER BY ord);
END
$$;

-- pgq._trigger_pkey(table): the primary key's columns in index order ('{}'
-- without one). Column names of the row itself come from the row (see
-- pgq._row_names), so only the key needs the catalogue.
CREATE OR REPLACE FUNCTION pgq._trigger_pkey(tbl oid)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN coalesce((SELECT array_agg(a.attname::text ORDER BY k.ord)
                       FROM pg_index i
                      CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
                       JOIN pg_attribute a ON a.attrelid = tbl AND a.attnum = k.attnum
                      WHERE i.indrelid = tbl AND i.indisprimary), '{}');
END
$$;

-- pgq._row_names(row as json): the row's column names in order, from the
-- row itself (no catalogue access): dropped columns are not in it.
CREATE OR REPLACE FUNCTION pgq._row_names(r json)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT AS $$
BEGIN
    RETURN ARRAY(SELECT json_object_keys(r));
END
$$;

-- pgq._trigger_layout(table, pkey=, row as json): column names, which are
-- key columns, and the key in index order, at the cost of one small
-- catalogue query (the key) per row.
CREATE OR REPLACE FUNCTION pgq._trigger_layout(tbl oid, pkey_override text[], r json,
        OUT names text[], OUT is_pkey boolean[], OUT pkey text[])
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_key   int2vector;
    v_natts integer;
BEGIN
    names := pgq._row_names(r);
    IF pkey_override IS NOT NULL THEN
        pkey := pkey_override;
    ELSE
        SELECT i.indkey, c.relnatts INTO v_key, v_natts
          FROM pg_class c LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
         WHERE c.oid = tbl;
        IF v_key IS NULL THEN
            pkey := '{}';
        ELSIF v_natts = cardinality(names) THEN
            -- no dropped columns: attribute numbers are positions in the row
            pkey := ARRAY(SELECT names[k] FROM unnest(v_key::int2[]) AS k);
        ELSE
            pkey := pgq._trigger_pkey(tbl);
        END IF;
    END IF;
    is_pkey := ARRAY(SELECT n = ANY (pkey) FROM unnest(names) WITH ORDINALITY AS x(n, ord) ORDER BY ord);
END
$$;

-- pgq._trigger_changes(names, is_pkey, new, old, ignore): compare an
-- UPDATE's old and new column texts. A changed key column is refused, as by
-- the C triggers. Returns the positions of the changed columns that are not
-- ignored ('{}' when nothing changed at all), or NULL when only ignored
-- columns changed: such an UPDATE makes no event.
CREATE OR REPLACE FUNCTION pgq._trigger_changes(names text[], is_pkey boolean[], vals text[], oldvals text[],
        ignore_cols text[])
RETURNS integer[] LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    changed integer[] := '{}';
    ignored boolean := false;
BEGIN
    FOR i IN 1 .. coalesce(array_length(names, 1), 0) LOOP
        CONTINUE WHEN vals[i] IS NOT DISTINCT FROM oldvals[i];
        IF is_pkey[i] THEN
            RAISE EXCEPTION 'primary key update not allowed' USING ERRCODE = 'XX000';
        ELSIF ignore_cols IS NOT NULL AND names[i] = ANY (ignore_cols) THEN
            ignored := true;
        ELSE
            changed := changed || i;
        END IF;
    END LOOP;
    IF ignored AND cardinality(changed) = 0 THEN
        RETURN NULL;
    END IF;
    RETURN changed;
END
$$;

-- pgq._trigger_eval(expression, row): the value of a when=/ev_*= expression
-- over the row's columns (row is NEW or OLD, of the table's row type).
CREATE OR REPLACE FUNCTION pgq._trigger_eval(expr text, r anyelement)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v text;
BEGIN
    EXECUTE 'SELECT (' || expr || ')::text FROM (SELECT ($1).*) AS _pgq_row' INTO v USING r;
    RETURN v;
END
$$;

-- pgq._trigger_when(expression, row): whether when= lets the row through;
-- NULL is an error, as in the C triggers.
CREATE OR REPLACE FUNCTION pgq._trigger_when(expr text, r anyelement)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v text := pgq._trigger_eval(expr, r);
BEGIN
    IF v IS NULL THEN
        RAISE EXCEPTION 'when= should not be NULL' USING ERRCODE = 'XX000';
    END IF;
    RETURN v::boolean;
END
$$;

-- pgq._trigger_emit(queue, overrides, event, row): apply the ev_*= overrides
-- (ev_type, ev_data, ev_extra1..4) to the event's six fields and insert it.
CREATE OR REPLACE FUNCTION pgq._trigger_emit(queue text, overrides text[], ev text[], r anyelement)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1 .. 6 LOOP
        IF overrides[i] IS NOT NULL THEN
            ev[i] := pgq._trigger_eval(overrides[i], r);
        END IF;
    END LOOP;
    PERFORM pgq.insert_event(queue, ev[1], ev[2], ev[3], ev[4], ev[5], ev[6]);
END
$$;
