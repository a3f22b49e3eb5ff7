package pgq

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// A process that works on other people's databases (the ticker daemon,
// `pgqgo maint`) runs with rights its users do not have, often a superuser's.
// It must never run SQL code written by those users: a database owner can
// create a schema named pgq full of functions, and a pgq_admin member can
// name any function in pgq.queue.queue_extra_maint. So such a process works
// only on code owned by a trusted role: its own role, a superuser, or one of
// the roles it is told to trust.

// ErrUntrusted is wrapped by the errors of code owned by a role the session
// does not trust.
var ErrUntrusted = errors.New("owned by an untrusted role")

// errNoFunction: a function to check does not exist.
var errNoFunction = errors.New("no such function")

// trustedOwner is an SQL condition: the role whose oid is %s is trusted,
// given the extra trusted role names as $1.
const trustedOwner = `coalesce((SELECT r.rolsuper OR r.rolname = current_user OR r.rolname = ANY ($1::text[])
	FROM pg_catalog.pg_roles r WHERE r.oid = %s), false)`

// roleNames is trusted as the text[] argument $1 (never NULL, which ANY
// would turn into "unknown").
func roleNames(trusted []string) []string {
	if trusted == nil {
		return []string{}
	}
	return trusted
}

// CheckSchemaTrust returns an error wrapping ErrUntrusted when schema, or any
// function, relation or type in it, or any trigger on its tables, is owned
// by a role that is neither the session's own role, nor a superuser, nor one
// of trusted. A missing schema is no error.
func CheckSchemaTrust(ctx context.Context, db DB, schema string, trusted []string) error {
	rows, err := db.Query(ctx, fmt.Sprintf(`
		WITH objs(kind, name, owner) AS (
			SELECT 'schema', n.nspname::text, n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = $2
			UNION ALL
			SELECT 'function', p.oid::pg_catalog.regprocedure::text, p.proowner
			  FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = $2
			UNION ALL
			SELECT 'relation', c.oid::pg_catalog.regclass::text, c.relowner
			  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $2
			UNION ALL
			SELECT 'type', t.oid::pg_catalog.regtype::text, t.typowner
			  FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = $2
			UNION ALL
			SELECT 'trigger', t.tgname || ' on ' || c.oid::pg_catalog.regclass::text || ' calling ' || p.oid::pg_catalog.regprocedure::text, p.proowner
			  FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
			  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
			 WHERE n.nspname = $2
		)
		SELECT o.kind || ' ' || o.name || ' (owner ' || coalesce(pg_catalog.pg_get_userbyid(o.owner)::text, '?') || ')'
		  FROM objs o WHERE NOT %s ORDER BY 1 LIMIT 20`, fmt.Sprintf(trustedOwner, "o.owner")), roleNames(trusted), schema)
	if err != nil {
		return fmt.Errorf("check owners of schema %s: %w", schema, err)
	}
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("check owners of schema %s: %w", schema, err)
	}
	if len(bad) > 0 {
		return fmt.Errorf("schema %s: %w: %s", schema, ErrUntrusted, strings.Join(bad, ", "))
	}
	return nil
}

// checkFunctionTrust returns an error wrapping ErrUntrusted unless the
// function [schema.]name exists and every function of that name in its
// schema (so no overload can be slipped in), and the schema, are owned by
// trusted roles. An unqualified name is looked up in pg_catalog, the only
// schema before pg_temp in a trusting session's search_path.
func checkFunctionTrust(ctx context.Context, db DB, name string, trusted []string) error {
	schema, fn := "pg_catalog", name
	if i := strings.IndexByte(name, '.'); i >= 0 {
		schema, fn = name[:i], name[i+1:]
	}
	var n int
	var ok bool
	err := db.QueryRow(ctx, fmt.Sprintf(`SELECT count(*), coalesce(bool_and(%s AND %s), false)
		FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $2 AND p.proname = $3`,
		fmt.Sprintf(trustedOwner, "p.proowner"), fmt.Sprintf(trustedOwner, "n.nspowner")),
		roleNames(trusted), schema, fn).Scan(&n, &ok)
	if err != nil {
		return fmt.Errorf("check owner of %s: %w", name, err)
	}
	if n == 0 {
		return fmt.Errorf("%s: %w", name, errNoFunction)
	}
	if !ok {
		return fmt.Errorf("function %s: %w (it or its schema)", name, ErrUntrusted)
	}
	return nil
}
