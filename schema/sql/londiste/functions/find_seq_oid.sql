-- londiste.find_seq_oid(name): the sequence's oid, or NULL.
CREATE OR REPLACE FUNCTION londiste.find_seq_oid(seq text)
RETURNS oid LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN londiste.find_rel_oid(seq, 'S');
END
$$;
