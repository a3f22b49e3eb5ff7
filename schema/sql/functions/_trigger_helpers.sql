-- Shared machinery of the change-capture triggers (pgq.logutriga,
-- pgq.sqltriga, pgq.jsontriga). Their output must be byte for byte what
-- Skytools' C triggers produce; see ../shared/reference/triggers.md and the
-- differential tests in schema/triggers_test.go.

-- pgq._urlencode(text): PgQ's urlencoding: A-Z a-z 0-9 _ . - kept, space as
-- '+', every other byte of the UTF-8 text as %xx with lowercase hex. Each
-- distinct character to encode is replaced throughout the text in one pass
-- ('%' first, '+' before the spaces become '+'), so the cost follows the
-- number of different characters, not the length.
CREATE OR REPLACE FUNCTION pgq._urlencode(s text)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    todo text;
    ch   text;
    out  text := s;
BEGIN
    IF s ~ '^[A-Za-z0-9_.-]*$' THEN
        RETURN s;
    ELSIF s ~ '^[A-Za-z0-9_. -]*$' THEN
        RETURN replace(s, ' ', '+');
    END IF;
    todo := regexp_replace(s, '[A-Za-z0-9_.-]+', '', 'g');
    IF strpos(todo, '%') > 0 THEN
        out := replace(out, '%', '%25');
        todo := replace(todo, '%', '');
    END IF;
    IF strpos(todo, '+') > 0 THEN
        out := replace(out, '+', '%2b');
        todo := replace(todo, '+', '');
    END IF;
    WHILE todo <> '' LOOP
        ch := left(todo, 1);
        IF ch <> ' ' THEN
            out := replace(out, ch, regexp_replace(encode(convert_to(ch, 'UTF8'), 'hex'), '(..)', '%\1', 'g'));
        END IF;
        todo := replace(todo, ch, '');
    END LOOP;
    RETURN replace(out, ' ', '+');
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
        -- given twice, ignore= and pkey= take the last, when= and ev_*= the
        -- first (as the C triggers)
        ELSIF a LIKE 'when=%' THEN
            when_expr := coalesce(when_expr, substr(a, 6));
        ELSIF a LIKE 'ev\_type=%' THEN
            overrides[1] := coalesce(overrides[1], substr(a, 9));
        ELSIF a LIKE 'ev\_data=%' THEN
            overrides[2] := coalesce(overrides[2], substr(a, 9));
        ELSIF a ~ '^ev_extra[1-4]=' THEN
            overrides[2 + substr(a, 9, 1)::integer] := coalesce(overrides[2 + substr(a, 9, 1)::integer], substr(a, 11));
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
-- dropped columns left out) into one text per column, NULL for NULL.
-- record_out quotes a value that is empty or holds a comma, parenthesis,
-- quote, backslash or white space, and doubles quotes and backslashes inside
-- the quotes; an empty unquoted value is NULL. Without any quote the text is
-- a plain comma list; otherwise it is cut at the quotes: the pieces in even
-- places were quoted, an empty piece between two of them is a doubled quote.
CREATE OR REPLACE FUNCTION pgq._record_fields(rec text)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    inner_text text := substr(rec, 2, length(rec) - 2);
    pieces     text[];
    parts      text[];
    vals       text[] := '{}';
    cur        text;
    n          integer;
    k          integer;
BEGIN
    IF strpos(inner_text, '"') = 0 THEN
        RETURN string_to_array(inner_text, ',', '');
    END IF;
    pieces := string_to_array(inner_text, '"');
    n := cardinality(pieces);
    FOR i IN 1 .. n LOOP
        IF i % 2 = 0 THEN
            cur := coalesce(cur, '') || replace(pieces[i], '\\', '\');
        ELSIF pieces[i] = '' THEN
            IF i > 1 AND i < n THEN
                cur := cur || '"';
            END IF;
        ELSE
            parts := string_to_array(pieces[i], ',', '');
            k := cardinality(parts);
            IF i = 1 THEN
                cur := parts[1];
            END IF;
            IF k > 1 THEN
                vals := vals || cur || parts[2:k - 1];
                cur := parts[k];
            END IF;
        END IF;
    END LOOP;
    RETURN vals || cur;
END
$$;

-- pgq._record_urlencoded(record text): the columns of a row's text form
-- (ROW::text) as '=' || urlencoded value, NULL for NULL, and '=*' for the
-- empty string ('*' is never left unencoded, so the caller turns '=*' into
-- '='). Urlencoding works byte by byte, so the record is encoded in a few
-- pieces instead of column by column: an unquoted run keeps its commas (an
-- unquoted value has none), a quoted value (see pgq._record_fields) is
-- encoded whole, commas and all.
CREATE OR REPLACE FUNCTION pgq._record_urlencoded(rec text)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT AS $$
DECLARE
    inner_text text := substr(rec, 2, length(rec) - 2);
    pieces     text[];
    piece      text;
    quoted     text;
    out        text := '';
    n          integer;
BEGIN
    IF strpos(inner_text, '"') = 0 THEN
        IF inner_text !~ '^[A-Za-z0-9_.,-]*$' THEN
            inner_text := replace(pgq._urlencode(inner_text), '%2c', ',');
        END IF;
        RETURN string_to_array('=' || replace(inner_text, ',', ',='), ',', '=');
    END IF;
    pieces := string_to_array(inner_text, '"');
    n := cardinality(pieces);
    FOR i IN 1 .. n LOOP
        piece := pieces[i];
        IF i % 2 = 0 THEN
            quoted := coalesce(quoted, '') || pgq._urlencode(replace(piece, '\\', '\'));
        ELSIF piece = '' AND i > 1 AND i < n THEN
            quoted := quoted || '%22'; -- a doubled quote inside the value
        ELSE
            IF quoted IS NOT NULL THEN
                out := out || coalesce(nullif(quoted, ''), '*');
                quoted := NULL;
            END IF;
            IF piece !~ '^[A-Za-z0-9_.,-]*$' THEN
                piece := replace(pgq._urlencode(piece), '%2c', ',');
            END IF;
            out := out || piece;
        END IF;
    END LOOP;
    IF quoted IS NOT NULL THEN
        out := out || coalesce(nullif(quoted, ''), '*');
    END IF;
    RETURN string_to_array('=' || replace(out, ',', ',='), ',', '=');
END
$$;

-- pgq._urlencode_format(names, ignore [, offset]): a format() string that puts
-- urlencoded values (pgq._record_urlencoded) after their column names:
-- 'a%1$s&b%2$s' (with offset 1: 'a%2$s&b%3$s'), ignored columns left out.
CREATE OR REPLACE FUNCTION pgq._urlencode_format(names text[], ignore_cols text[], val_offset integer DEFAULT 0)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(string_agg(replace(pgq._urlencode(n), '%', '%%') || '%' || (ord + val_offset) || '$s', '&' ORDER BY ord), '')
      FROM unnest(names) WITH ORDINALITY AS x(n, ord)
     WHERE ignore_cols IS NULL OR NOT n = ANY (ignore_cols)
$$;

-- pgq._trigger_layout_text(table, row as json text): what logutriga needs to
-- know of a table, as one text of fields separated by E'\x01', kept per
-- session in the setting pgqgo.lu_<table oid>:
--   1 kind: 'p' the table's identity index is its primary key (the key's
--     names can be trusted while that index and the column names stay the
--     same), 'n' the table has no index at all (no key), 'k' anything else
--     (the key is looked up per row); in capitals when a column's JSON can
--     nest objects (json, jsonb, composite types, ...), where a key inside a
--     value could pass for a column name in the pattern of field 4
--   2 the identity index's oid ('' for none), from the relation cache
--   3 the number of columns
--   4 a LIKE pattern that the row's JSON matches only while the column names
--     and their order are unchanged (given the number of columns)
--   5 the format() string of the data (pgq._urlencode_format)
--   6 the key's names, a text[]
--   7 the column names, a text[] (capital kinds only)
-- It also sets the fast path's layouts where it has one,
-- pgqgo.lf_<INSERT|UPDATE|DELETE><table oid> (fields: three left empty for
-- the queue row pgq._trigger_fast_event keeps there; the LIKE pattern of the
-- number of values, the identity index (0: no index) and the row's JSON;
-- ev_type; the format() string of the data), and clears the others.
-- NULL for a table with a control character in a column name (the caller
-- then works without a layout).
CREATE OR REPLACE FUNCTION pgq._trigger_layout_text(tbl oid, js text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    names   text[] := ARRAY(SELECT json_object_keys(js::json));
    idx     oid := pg_catalog.pg_get_replica_identity_index(tbl);
    n       integer := cardinality(names);
    kind    text := 'k';
    pkey    text[] := '{}';
    pos     integer[] := '{}';
    nested  boolean;
    pattern text;
    lay     text;
    op      text;
BEGIN
    -- no fast layouts for names with control characters, nor for tables with
    -- PgQ's special columns (_pgq_ev_*: the general path handles those)
    IF array_to_string(names, '') ~ '[\x01-\x1f]'
       OR names && ARRAY['_pgq_ev_type', '_pgq_ev_extra1', '_pgq_ev_extra2', '_pgq_ev_extra3', '_pgq_ev_extra4'] THEN
        FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            PERFORM set_config('pgqgo.lf_' || op || tbl, '', false);
        END LOOP;
        RETURN NULL;
    END IF;
    IF idx IS NOT NULL THEN
        pkey := pgq._trigger_pkey(tbl); -- also remembers whether idx is the primary key
    END IF;
    IF current_setting('pgqgo.pkey_' || idx, true) LIKE 'p%' THEN
        pos := ARRAY(SELECT array_position(names, k) FROM unnest(pkey) AS k);
        IF array_position(pos, NULL) IS NULL THEN
            kind := 'p';
        END IF;
    ELSIF pg_catalog.pg_indexes_size(tbl) = 0 THEN
        kind := 'n';
    END IF;
    -- json_categorize_type: domains are seen through, arrays by their
    -- elements, user types with a cast to json are written by it
    nested := EXISTS (
        SELECT FROM pg_catalog.pg_attribute a
          JOIN pg_catalog.pg_type t0 ON t0.oid = a.atttypid
          JOIN pg_catalog.pg_type t1 ON t1.oid = CASE WHEN t0.typtype = 'd' THEN t0.typbasetype ELSE t0.oid END
          JOIN pg_catalog.pg_type t ON t.oid = CASE WHEN t1.typcategory = 'A' AND t1.typelem <> 0 THEN t1.typelem ELSE t1.oid END
         WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped
           AND (t.oid IN ('json'::regtype, 'jsonb'::regtype) OR t.typtype IN ('c', 'd', 'p')
                OR (t.oid >= 16384 AND EXISTS (SELECT FROM pg_catalog.pg_cast c
                                                WHERE c.castsource = t.oid AND c.casttarget = 'json'::regtype))));
    pattern := '{' || coalesce((SELECT string_agg(replace(replace(replace(to_json(x)::text, '\', '\\'), '%', '\%'), '_', '\_')
                                                  || ':%', ',' ORDER BY ord)
                                  FROM unnest(names) WITH ORDINALITY AS u(x, ord)), '') || '}';
    -- the fast path's layouts (its values are '', the row's columns, ''):
    -- INSERT and DELETE for a table with a key or without any index, UPDATE
    -- only when the key is the first column alone (UPDATE and DELETE on a
    -- table without a key are refused, by the general path)
    FOREACH op IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
        PERFORM set_config('pgqgo.lf_' || op || tbl,
            CASE WHEN NOT nested AND (kind = 'p' AND (op <> 'UPDATE' OR pos = '{1}') OR kind = 'n' AND op = 'INSERT')
                 THEN concat_ws(E'\x01', '', '', '',
                          (n + 2) || '/' || coalesce(idx::text, '0') || pattern,
                          left(op, 1) || ':' || array_to_string(pkey, ','),
                          pgq._urlencode_format(names, NULL, 1))
                 ELSE '' END, false);
    END LOOP;
    IF nested THEN
        kind := upper(kind);
    END IF;
    lay := concat_ws(E'\x01', kind,
        coalesce(idx::text, ''),
        n,
        pattern,
        pgq._urlencode_format(names, NULL),
        pkey::text,
        CASE WHEN nested THEN names::text ELSE '' END);
    PERFORM set_config('pgqgo.lu_' || tbl, lay, false);
    RETURN lay;
END
$$;

-- pgq._trigger_row_values(row text): a row's values (ROW::text) as
-- logutriga writes them: '', then per column '=' || urlencoded value (NULL
-- for NULL), then ''. In one expression when nothing or only spaces, ':' and
-- '+' need encoding (numbers, timestamps, padded text: the quotes can go, as
-- no doubled quote says a quote was in a value), else by
-- pgq._trigger_row_urlencoded. A quoted value with a comma or a parenthesis
-- is cut in pieces here: the number of values then differs from the
-- layout's, which the callers check. Spaces go eight at a time first: char(n)
-- padding is long, and replace() pays per match (translate() costs more
-- still: 16k instructions for an 84-space pgbench_accounts row, against 7k).
-- SQL, so that it is inlined into the caller's expression (no call per row);
-- inlined, it is parsed under the caller's search_path, and its caller
-- pgq._trigger_fast_event is SECURITY DEFINER: so every name has its schema.
CREATE OR REPLACE FUNCTION pgq._trigger_row_values(rec text)
RETURNS text[] LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN rec OPERATOR(pg_catalog.!~) '[^A-Za-z0-9_.:+ ",()-]'
             AND pg_catalog.strpos(rec, '""') OPERATOR(pg_catalog.=) 0 THEN
            pg_catalog.string_to_array(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(
                rec, '+', '%2b'), ':', '%3a'), ',', ',='), '(', ',='), ')', ','), '        ', '++++++++'), ' ', '+'),
                '"', ''), ',', '=')
        ELSE pgq._trigger_row_urlencoded(rec) END
$$;

-- pgq._trigger_row_urlencoded(row text): a row's values (ROW::text) as
-- logutriga's fast path writes them: '', then per column '=' || urlencoded
-- value (NULL for NULL), then ''. The slow way, for values that need more
-- than spaces, ':' and '+' encoded. PL/pgSQL, so that it is not inlined into
-- pgq._trigger_row_values (whose every expression is prepared per transaction).
-- Its fixed search_path protects it when it runs under pgq._trigger_fast_event.
CREATE OR REPLACE FUNCTION pgq._trigger_row_urlencoded(rec text)
RETURNS text[] LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    RETURN array_replace(ARRAY[''] || pgq._record_urlencoded(rec) || ARRAY[''], '=*', '=');
END
$$;

-- pgq._trigger_pkey(table): the primary key's columns in index order ('{}'
-- without one), by their current names. Cheap per row: the key index comes
-- from the relation cache (pg_get_replica_identity_index: the primary key
-- unless REPLICA IDENTITY says otherwise), whether that index is the primary
-- key and how many columns it has is remembered per session in a setting
-- (pgqgo.pkey_<index oid>: 'p<columns>' or 'x'; an index's oid never changes
-- its columns), and the names come from pg_get_indexdef, so a renamed column
-- shows its new name. Tables whose identity index is not the key ask
-- pg_index every time.
CREATE OR REPLACE FUNCTION pgq._trigger_pkey(tbl oid)
RETURNS text[] LANGUAGE plpgsql STABLE AS $$
DECLARE
    idx   oid := pg_catalog.pg_get_replica_identity_index(tbl);
    info  text;
    natts integer;
    pkey  text[] := '{}';
    n     text;
BEGIN
    IF idx IS NOT NULL THEN
        info := current_setting('pgqgo.pkey_' || idx, true);
        IF info IS NULL OR info NOT LIKE '_%' THEN
            SELECT CASE WHEN i.indisprimary THEN 'p' || i.indnatts ELSE 'x' END INTO info
              FROM pg_catalog.pg_index i WHERE i.indexrelid = idx;
            PERFORM set_config('pgqgo.pkey_' || idx, info, false);
        END IF;
    END IF;
    IF info LIKE 'p%' THEN
        natts := substr(info, 2)::integer;
    ELSE
        IF idx IS NULL AND NOT (SELECT c.relhasindex FROM pg_catalog.pg_class c WHERE c.oid = tbl) THEN
            RETURN pkey; -- never had an index (the cheap answer for tables without a key)
        END IF;
        SELECT i.indexrelid, i.indnatts INTO idx, natts
          FROM pg_catalog.pg_index i WHERE i.indrelid = tbl AND i.indisprimary;
        IF NOT FOUND THEN
            RETURN pkey;
        END IF;
    END IF;
    FOR k IN 1 .. natts LOOP
        n := pg_catalog.pg_get_indexdef(idx, k, false);
        IF left(n, 1) = '"' THEN
            n := replace(substr(n, 2, length(n) - 2), '""', '"');
        END IF;
        pkey := pkey || n;
    END LOOP;
    RETURN pkey;
END
$$;

-- pgq._trigger_layout(table, pkey=, row as json): column names, which are
-- key columns, and the key in index order.
CREATE OR REPLACE FUNCTION pgq._trigger_layout(tbl oid, pkey_override text[], r json,
        OUT names text[], OUT is_pkey boolean[], OUT pkey text[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
    names := ARRAY(SELECT json_object_keys(r));
    pkey := coalesce(pkey_override, pgq._trigger_pkey(tbl));
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

-- pgq._trigger_special(names, overrides): PgQ's special columns. A column
-- named _pgq_ev_type or _pgq_ev_extra1 .. _pgq_ev_extra4 sets that field of
-- the event, to its value even when NULL (an ev_*= argument wins), and is left
-- out of the row data, in every trigger and operation. Returns the overrides
-- with those columns added (ovr), and the columns (cols; NULL when none).
CREATE OR REPLACE FUNCTION pgq._trigger_special(names text[], overrides text[], OUT ovr text[], OUT cols text[])
RETURNS record LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    k text;
BEGIN
    ovr := overrides;
    cols := ARRAY(SELECT n FROM unnest(names) AS n
                   WHERE n IN ('_pgq_ev_type', '_pgq_ev_extra1', '_pgq_ev_extra2', '_pgq_ev_extra3', '_pgq_ev_extra4'));
    IF cardinality(cols) = 0 THEN
        cols := NULL;
        RETURN;
    END IF;
    ovr := coalesce(ovr, '{NULL,NULL,NULL,NULL,NULL,NULL}'::text[]);
    FOREACH k IN ARRAY cols LOOP
        ovr[CASE k WHEN '_pgq_ev_type' THEN 1 WHEN '_pgq_ev_extra1' THEN 3 WHEN '_pgq_ev_extra2' THEN 4
                   WHEN '_pgq_ev_extra3' THEN 5 ELSE 6 END]
            := coalesce(ovr[CASE k WHEN '_pgq_ev_type' THEN 1 WHEN '_pgq_ev_extra1' THEN 3 WHEN '_pgq_ev_extra2' THEN 4
                                   WHEN '_pgq_ev_extra3' THEN 5 ELSE 6 END], quote_ident(k));
    END LOOP;
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
