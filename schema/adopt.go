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

// adoptedAPI is the PgQ version whose installations pgqgo adopts as they
// are; legacyAPI's (Skytools 2.1) are converted to it first (from21.sql).
const (
	adoptedAPI = "3.5"
	legacyAPI  = "2.1"
)

// skytoolsExtensions are the extensions that adoption detaches (dependents
// first); any other extension that needs pgq stops the adoption.
var skytoolsExtensions = []string{"londiste", "pgq_coop", "pgq_ext", "pgq_node", "pgq"}

// adoption is what adoptionPlan found: the steps to show, and whether the
// tables are PgQ 2.1's, to be converted.
type adoption struct {
	steps  []string
	from21 bool
	// components: Skytools' pgq_node and londiste schemas in the database,
	// whose functions are replaced with pgqgo's, their tables and rows kept
	components []Component
}

// adoptionPlan checks that the foreign pgq schema in the transaction's
// database is Skytools PgQ 3.5 or 2.1 with exactly the tables pgqgo expects,
// and returns the steps of taking it over.
func adoptionPlan(ctx context.Context, tx pgx.Tx, in Installed) (adoption, error) {
	var a adoption
	if in.APILevel == "" {
		return a, fmt.Errorf("%w: pgq.version() is missing or returns NULL, so its PgQ version is unknown", ErrCannotAdopt)
	}
	version := func(v string) bool { return in.APILevel == v || strings.HasPrefix(in.APILevel, v+".") }
	a.from21 = version(legacyAPI)
	if !version(adoptedAPI) && !a.from21 {
		return a, fmt.Errorf("%w: it is PgQ %s, pgqgo adopts PgQ %s and %s only (upgrade Skytools to PgQ %s first)",
			ErrCannotAdopt, in.APILevel, legacyAPI, adoptedAPI, adoptedAPI)
	}
	rows, err := tx.Query(ctx, mustRead("sql/adopt/structure.sql"))
	if err != nil {
		return a, fmt.Errorf("adopt: read the structure: %w", err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return a, fmt.Errorf("adopt: read the structure: %w", err)
	}
	want, api := expectedStructure("sql/adopt/pgq35.txt"), adoptedAPI
	if a.from21 {
		want, api = expectedStructure("sql/adopt/pgq21.txt"), legacyAPI
	}
	if diff := structureDiff(want, have); diff != "" {
		return a, fmt.Errorf("%w: its tables differ from PgQ %s's:\n%s", ErrCannotAdopt, api, diff)
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
		return a, fmt.Errorf("adopt: list extensions: %w", err)
	}
	type ext struct{ name, version string }
	exts, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ext, error) {
		var e ext
		return e, r.Scan(&e.name, &e.version)
	})
	if err != nil {
		return a, fmt.Errorf("adopt: list extensions: %w", err)
	}
	if err := adoptionRights(ctx, tx); err != nil {
		return a, err
	}
	var steps, detached []string
	for _, e := range exts {
		known := false
		for _, k := range skytoolsExtensions {
			known = known || k == e.name
		}
		if !known {
			return a, fmt.Errorf("%w: extension %q (%s) depends on Skytools' extensions; pgqgo does not know it", ErrCannotAdopt, e.name, e.version)
		}
		detached = append(detached, e.name+" "+e.version)
	}
	what := "Skytools PgQ " + in.APILevel + " (plain SQL)"
	switch {
	case a.from21:
		legacy, err := legacySteps(ctx, tx)
		if err != nil {
			return a, err
		}
		steps = append(steps, legacy...)
	case len(detached) > 0:
		what = "Skytools PgQ " + in.APILevel + " (extensions " + strings.Join(detached, ", ") + ")"
		steps = append(steps, "adopt "+what+": detach every object from the extensions and drop them, the objects and data stay")
	default:
		steps = append(steps, "adopt "+what+": keep every table, queue, consumer, tick and event as it is")
	}
	for _, c := range []Component{Node, Londiste} {
		if a.from21 {
			break // Skytools 2.1's londiste is left as it is (legacySteps)
		}
		ok, err := componentAdoptable(ctx, tx, c)
		if err != nil {
			return a, err
		}
		if ok {
			a.components = append(a.components, c)
			steps = append(steps, "replace "+string(c)+"'s functions with pgqgo's (same names, arguments and results; its tables and rows stay)")
		}
	}
	a.steps = append(steps, "create pgq.pgqgo_schema")
	return a, nil
}

// adoptedComponents are the structure files of the component schemas an
// adoption takes over, and the Skytools versions they describe.
var adoptedComponents = map[Component]struct{ file, version string }{
	Node:     {"sql/adopt/pgq_node35.txt", "pgq_node 3.5"},
	Londiste: {"sql/adopt/londiste38.txt", "londiste 3.8"},
}

// componentAdoptable reports whether the database has the component's
// schema (Skytools'), and checks that its tables are Skytools' before
// pgqgo's functions replace its own.
func componentAdoptable(ctx context.Context, tx pgx.Tx, c Component) (bool, error) {
	var has bool
	if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regnamespace($1) IS NOT NULL`, string(c)).Scan(&has); err != nil {
		return false, fmt.Errorf("adopt: look for %s: %w", c, err)
	}
	if !has {
		return false, nil
	}
	rows, err := tx.Query(ctx, mustRead("sql/adopt/component_structure.sql"), string(c))
	if err != nil {
		return false, fmt.Errorf("adopt: read %s's structure: %w", c, err)
	}
	have, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return false, fmt.Errorf("adopt: read %s's structure: %w", c, err)
	}
	want := adoptedComponents[c]
	if diff := structureDiff(expectedStructure(want.file), have); diff != "" {
		return false, fmt.Errorf("%w: its %s tables differ from %s's:\n%s", ErrCannotAdopt, c, want.version, diff)
	}
	return true, nil
}

// legacySteps describes the conversion of a PgQ 2.1 installation
// (from21.sql), with what it holds: failed events, tables whose triggers use
// 2.1's C trigger functions, and londiste 2.1's schema (left as it is).
func legacySteps(ctx context.Context, tx pgx.Tx) ([]string, error) {
	var queues, consumers, ticks, open, retries, failed int64
	var triggers []string
	err := tx.QueryRow(ctx, `SELECT (SELECT count(*) FROM pgq.queue), (SELECT count(*) FROM pgq.subscription),
		(SELECT count(*) FROM pgq.tick), (SELECT count(*) FROM pgq.subscription WHERE sub_batch IS NOT NULL),
		(SELECT count(*) FROM pgq.retry_queue), (SELECT count(*) FROM pgq.failed_queue),
		ARRAY(SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) || ' (' || p.proname || ')'
		        FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
		        JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		       WHERE p.pronamespace = 'pgq'::regnamespace ORDER BY 1)`).
		Scan(&queues, &consumers, &ticks, &open, &retries, &failed, &triggers)
	if err != nil {
		return nil, fmt.Errorf("adopt: read the PgQ 2.1 installation: %w", err)
	}
	steps := []string{
		fmt.Sprintf("convert Skytools PgQ 2.1 in place to PgQ 3.5's tables: %d queues, %d subscriptions (%d with a batch open), "+
			"%d ticks and every event kept; queues get 3.5's new columns at their defaults; retry events (%d) keep their "+
			"consumer and due time; ticks get tick_event_seq, estimated from the events their snapshots saw",
			queues, consumers, open, ticks, retries),
		fmt.Sprintf("move %d failed events (pgq.failed_queue, which PgQ 3 dropped) to pgq.dead_letter with their reasons, "+
			"then drop pgq.failed_queue", failed),
		"drop PgQ 2.1's functions and result types (event_failed, failed_event_*, ret_*, ...): pgqgo's replace them, " +
			"the C insert_event_raw included",
	}
	if len(triggers) > 0 {
		steps = append(steps, "replace the C trigger functions in place with pgqgo's PL/pgSQL (logtriga keeps 2.1's "+
			"column-spec argument); these triggers keep working: "+strings.Join(triggers, ", "))
	}
	rows, err := tx.Query(ctx, `SELECT n.nspname::text || ' (tables: ' || coalesce(string_agg(c.relname::text, ', ' ORDER BY c.relname), 'none') || ')'
		  FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relkind = 'r'
		 WHERE n.nspname IN ('londiste', 'pgq_ext') GROUP BY n.nspname ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("adopt: look for londiste 2.1: %w", err)
	}
	others, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("adopt: look for londiste 2.1: %w", err)
	}
	if len(others) > 0 {
		steps = append(steps, "leave Skytools 2.1's schemas "+strings.Join(others, "; ")+" as they are (not converted): Skytools 2.1's "+
			"workers call PgQ 2.1 functions that PgQ 3 dropped (event_failed): keep them stopped; `pgqgo londiste CONFIG.ini adopt-21` "+
			"moves each londiste 2.1 node onto pgqgo londiste in place")
	}
	return steps, nil
}

// expectedStructure is one of sql/adopt's structure files without its comments.
func expectedStructure(file string) []string {
	var out []string
	for _, l := range strings.Split(mustRead(file), "\n") {
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
