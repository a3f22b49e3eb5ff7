-- pgq.seq_getval(seq): last value of a sequence without advancing it (the
-- start value when it was never used). Needs SELECT on the sequence.
CREATE OR REPLACE FUNCTION pgq.seq_getval(i_seq_name text)
RETURNS bigint LANGUAGE plpgsql STRICT AS $$
DECLARE
    v bigint;
BEGIN
    EXECUTE 'SELECT last_value FROM ' || pgq.quote_fqname(i_seq_name) INTO v;
    RETURN v;
END
$$;
