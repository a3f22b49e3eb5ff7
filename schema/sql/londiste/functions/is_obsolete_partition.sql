-- londiste.is_obsolete_partition(part, retention, period): whether the
-- partition, named <parent>_YYYY[_MM[_DD[_HH]]] after its period (year,
-- month, day, hour), ended more than retention ago; NULL when its name does
-- not say. Other periods are refused.
CREATE OR REPLACE FUNCTION londiste.is_obsolete_partition(i_partition_table text, i_retention_period interval,
        i_partition_period text)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    v_pat   text;
    v_m     text[];
    v_start timestamptz;
BEGIN
    v_pat := CASE i_partition_period
        WHEN 'year' THEN '_(\d{4})$'
        WHEN 'month' THEN '_(\d{4})_(\d{2})$'
        WHEN 'day' THEN '_(\d{4})_(\d{2})_(\d{2})$'
        WHEN 'hour' THEN '_(\d{4})_(\d{2})_(\d{2})_(\d{2})$'
    END;
    IF v_pat IS NULL THEN
        RAISE EXCEPTION 'not supported i_partition_period: %', i_partition_period;
    END IF;
    v_m := regexp_match(i_partition_table, v_pat);
    IF v_m IS NULL THEN
        RETURN NULL;
    END IF;
    v_start := (v_m[1] || '-' || coalesce(v_m[2], '01') || '-' || coalesce(v_m[3], '01') || ' '
                || coalesce(v_m[4], '00') || ':00')::timestamptz;
    RETURN v_start + ('1 ' || i_partition_period)::interval < now() - i_retention_period;
END
$$;
