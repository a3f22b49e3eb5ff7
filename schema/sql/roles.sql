-- The three PgQ roles. Created when missing and when the installing role may
-- create roles; otherwise skipped with a notice (grants to missing roles are
-- skipped too, so a plain database owner can still install the schema).
DO $roles$
DECLARE
    r text;
BEGIN
    FOREACH r IN ARRAY ARRAY['pgq_reader', 'pgq_writer', 'pgq_admin'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I', r);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- made meanwhile by an install in another database of the cluster
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'pgqgo: role % does not exist and cannot be created by %; its grants are skipped', r, current_user;
            END;
        END IF;
    END LOOP;
    FOREACH r IN ARRAY ARRAY['pgq_reader', 'pgq_writer'] LOOP
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r)
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'pgq_admin')
           AND NOT pg_catalog.pg_has_role('pgq_admin', r, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO pgq_admin', r);
            EXCEPTION WHEN unique_violation THEN
                NULL; -- granted meanwhile by an install in another database
            WHEN insufficient_privilege THEN
                RAISE NOTICE 'pgqgo: cannot make pgq_admin a member of %', r;
            END;
        END IF;
    END LOOP;
END
$roles$;
