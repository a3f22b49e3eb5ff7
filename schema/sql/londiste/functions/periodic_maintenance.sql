-- londiste.periodic_maintenance(): the ticker's maintenance: forget EXECUTE
-- scripts applied more than three months ago.
CREATE OR REPLACE FUNCTION londiste.periodic_maintenance()
RETURNS integer LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM londiste.applied_execute WHERE execute_time < now() - interval '3 months';
    RETURN 0;
END
$$;
