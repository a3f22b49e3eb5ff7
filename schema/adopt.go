package schema

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// ErrCannotAdopt is returned when a foreign pgq schema is not one pgqgo can
// take over safely; nothing is changed then.
var ErrCannotAdopt = errors.New("cannot adopt this pgq schema")

// adoptedAPI is the PgQ version whose installations pgqgo adopts.
const adoptedAPI = "3.5"

// skytoolsExtensions are the extensions that adoption detaches (dependents
// first); any other extension that needs pgq stops the adoption.
var skytoolsExtensions = []string{"londiste", "pgq_coop", "pgq_ext", "pgq_node", "pgq"}

// adoptionPlan checks that the foreign pgq schema in the transaction's
// database is Skytools PgQ 3.5 with exactly the tables pgqgo expects, and
// returns the steps of taking it over.
func adoptionPlan(ctx context.Context, tx pgx.Tx, in Installed) ([]string, error) {
	if in.APILevel == "" {
		return nil, fmt.Errorf("%w: pgq.version() is missing or returns NULL, so its PgQ version is unknown", ErrCannotAdopt)
	}
	if in.APILevel != adoptedAPI && !strings.HasPrefix(in.APILevel, adoptedAPI+".") {
		return nil, fmt.Errorf("%w: it is PgQ %s, pgqgo adopts PgQ %s only (upgrade Skytools to PgQ %s first)",
			ErrCannotAdopt, in.APILevel, adoptedAPI, adoptedAPI)
	}
	rows, err := tx.Query(ctx, mustRead("sql/adopt/structure.sql"))
	if err != nil {
		return nil, fmt.Errorf("adopt: read the structure: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("adopt: read the structure: %w", err)
	}
	if diff := structureDiff(expectedStructure(), have); diff != "" {
		return nil, fmt.Errorf("%w: its tables differ from PgQ %s's:\n%s", ErrCannotAdopt, adoptedAPI, diff)
	}
	rows, err = tx.Query(ctx, `
		SELECT x.extname::text, x.extversion
		  FROM pg_catalog.pg_extension x
		 WHERE x.extname = ANY ($1)
		    OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension p ON p.oid = d.refobjid
		                WHERE d.classid = 'pg_catalog.pg_extension'::regclass AND d.objid = x.oid
		                  AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND p.extname = ANY ($1))
		 ORDER BY array_position($1, x.extname::text)`, skytoolsExtensions)
	if err != nil {
		return nil, fmt.Errorf("adopt: list extensions: %w", err)
	}
	type ext struct{ name, version string }
	exts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ext, error) {
		var e ext
		return e, r.Scan(&e.name, &e.version)
	})
	if err != nil {
		return nil, fmt.Errorf("adopt: list extensions: %w", err)
	}
	if err := adoptionRights(ctx, tx); err != nil {
		return nil, err
	}
	var steps, detached []string
	for _, e := range exts {
		known := false
		for _, k := range skytoolsExtensions {
			known = known || k == e.name
		}
		if !known {
			return nil, fmt.Errorf("%w: extension %q (%s) depends on Skytools' extensions; pgqgo does not know it", ErrCannotAdopt, e.name, e.version)
		}
		detached = append(detached, e.name+" "+e.version)
	}
	what := "Skytools PgQ " + in.APILevel + " (plain SQL)"
	if len(detached) > 0 {
		what = "Skytools PgQ " + in.APILevel + " (extensions " + strings.Join(detached, ", ") + ")"
		steps = append(steps, "adopt "+what+": detach every object from the extensions and drop them, the objects and data stay")
	} else {
		steps = append(steps, "adopt "+what+": keep every table, queue, consumer, tick and event as it is")
	}
	steps = append(steps, "create pgq.pgqgo_schema")
	return steps, nil
}

// expectedStructure is sql/adopt/pgq35.txt without its comments.
func expectedStructure() []string {
	var out []string
	for _, l := range strings.Split(mustRead("sql/adopt/pgq35.txt"), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

// structureDiff lists the lines missing (-) from or extra (+) in have.
func structureDiff(want, have []string) string {
	in := func(xs []string) map[string]bool {
		m := map[string]bool{}
		for _, x := range xs {
			m[x] = true
		}
		return m
	}
	w, h := in(want), in(have)
	var out []string
	for _, l := range want {
		if !h[l] {
			out = append(out, "  - "+l)
		}
	}
	for _, l := range have {
		if !w[l] {
			out = append(out, "  + "+l)
		}
	}
	return strings.Join(out, "\n")
}

// adoptionRights checks that the installing role may take the installation
// over: detaching and dropping Skytools' extensions, and replacing the
// functions and altering the tables of its schemas, need superuser or the
// owner of each (membership in the owning role counts). Checked before
// anything is changed, and by a dry run too.
func adoptionRights(ctx context.Context, tx pgx.Tx) error {
	rows, err := tx.Query(ctx, `
		WITH objs(kind, name, owner) AS (
		    SELECT 'extension', x.extname::text, x.extowner FROM pg_catalog.pg_extension x WHERE x.extname = ANY ($1)
		    UNION ALL
		    SELECT 'schema', n.nspname::text, n.nspowner FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY ($2)
		    UNION ALL
		    SELECT 'function', p.oid::regprocedure::text, p.proowner FROM pg_catalog.pg_proc p
		     WHERE p.pronamespace::regnamespace::text = ANY ($2)
		    UNION ALL
		    SELECT 'table', c.oid::regclass::text, c.relowner FROM pg_catalog.pg_class c
		     WHERE c.relnamespace::regnamespace::text = ANY ($2) AND c.relkind IN ('r', 'p', 'S'))
		SELECT DISTINCT o.owner::regrole::text
		  FROM objs o
		 WHERE NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
		   AND NOT pg_catalog.pg_has_role(current_user, o.owner, 'USAGE')
		 ORDER BY 1`, skytoolsExtensions, []string{"pgq", "pgq_node", "londiste", "pgq_coop", "pgq_ext"})
	if err != nil {
		return fmt.Errorf("adopt: check rights: %w", err)
	}
	owners, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("adopt: check rights: %w", err)
	}
	if len(owners) > 0 {
		var user string
		if err := tx.QueryRow(ctx, `SELECT current_user::text`).Scan(&user); err != nil {
			return fmt.Errorf("adopt: check rights: %w", err)
		}
		return fmt.Errorf("%w: taking Skytools' PgQ over in place needs a superuser or the owner of its extensions, schemas, "+
			"functions and tables; %s is neither (owned by %s): run the upgrade as one of them",
			ErrCannotAdopt, user, strings.Join(owners, ", "))
	}
	return nil
}
