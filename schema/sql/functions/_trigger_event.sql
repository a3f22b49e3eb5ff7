-- pgq._trigger_check(...): the deny and SKIP rules shared by the
-- change-capture triggers, with the C triggers' messages.
CREATE OR REPLACE FUNCTION pgq._trigger_check(i_deny boolean, i_skip boolean, i_queue text,
        tg_when text, tg_op text, tbl text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF i_deny THEN
        RAISE EXCEPTION 'Table ''%'' to queue ''%'': change not allowed (%)', tbl, i_queue, tg_op USING ERRCODE = 'XX000';
    END IF;
    IF i_skip AND tg_when <> 'BEFORE' THEN
        RAISE EXCEPTION 'SKIP does not work in AFTER trigger.' USING ERRCODE = 'XX000';
    END IF;
END
$$;
