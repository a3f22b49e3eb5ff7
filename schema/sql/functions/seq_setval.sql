-- pgq.seq_setval(seq, value): move a sequence forward to value; never moves it
-- back. Returns the sequence's resulting last value.
CREATE OR REPLACE FUNCTION pgq.seq_setval(i_seq_name text, i_new_value bigint)
RETURNS bigint LANGUAGE plpgsql STRICT AS $$
DECLARE
    v_cur bigint;
BEGIN
    v_cur := pgq.seq_getval(i_seq_name);
    IF i_new_value > v_cur THEN
        PERFORM pg_catalog.setval(pgq.quote_fqname(i_seq_name), i_new_value);
        RETURN i_new_value;
    END IF;
    RETURN v_cur;
END
$$;
