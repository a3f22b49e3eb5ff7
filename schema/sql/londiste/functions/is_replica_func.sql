-- londiste.is_replica_func(function): whether the function is one of pgq's
-- change-capture triggers (the ones londiste replicates with).
CREATE OR REPLACE FUNCTION londiste.is_replica_func(func_oid oid)
RETURNS boolean LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
                    WHERE p.oid = func_oid AND p.pronamespace = 'pgq'::regnamespace
                      AND p.proname IN ('logutriga', 'sqltriga', 'jsontriga', 'logtriga'))
$$;
