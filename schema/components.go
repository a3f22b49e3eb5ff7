package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Component is one of the small schemas that sit beside pgq.
type Component string

const (
	// Coop is pgq_coop: cooperative consumers, installed beside a pgq schema
	// (pgqgo's or Skytools' C extension).
	Coop Component = "pgq_coop"
	// Ext is pgq_ext: exactly-once bookkeeping, installed in the database a
	// consumer writes to; it needs no pgq schema there.
	Ext Component = "pgq_ext"
	// Node is pgq_node: a cascade's bookkeeping on each node (locations,
	// node type, cascaded consumers, subscribers, watermarks, takeover
	// steps), beside a pgq schema.
	Node Component = "pgq_node"
	// Londiste is londiste: the replication bookkeeping (tables, sequences,
	// copy states, EXECUTE scripts, pending foreign keys, the capture
	// triggers), beside pgq and pgq_node.
	Londiste Component = "londiste"
)

// components are the known components, in dependency order.
var components = []Component{Coop, Ext, Node, Londiste}

// Components lists the known components in the order they can be installed
// (londiste after pgq_node).
func Components() []Component { return slices.Clone(components) }

// ErrNoNode is returned when londiste is installed in a database without a
// pgq_node schema.
var ErrNoNode = errors.New("the database has no pgq_node schema")

// componentMigrations returns the numbered migrations of a component that
// has them (sql/<component>/migrations: pgq_node, londiste), or nil for one
// whose structure.sql is run as it is at every install (pgq_coop, pgq_ext).
func componentMigrations(c Component) []Migration {
	dir := path.Join("sql", string(c), "migrations")
	if _, err := fs.Stat(files, dir); err != nil {
		return nil
	}
	ms, err := migrationsIn(files, dir)
	if err != nil {
		panic(err) // embedded at build time
	}
	return ms
}

// componentLevelNote is what a component's schema comment says once pgqgo
// has installed it: the last migration applied.
var componentLevelNote = regexp.MustCompile(`^pgqgo \S+ migration (\d+)$`)

// componentMigration reports the migration level of an installed component
// schema: its last migration applied, 0 when the schema is not there. A
// schema pgqgo did not install (Skytools' pgq_node or londiste) counts as
// migration 1 once its tables are found to be Skytools' own; other tables
// are refused (ErrCannotAdopt).
func componentMigration(ctx context.Context, q pgx.Tx, c Component) (int, error) {
	var exists bool
	var note *string
	err := q.QueryRow(ctx, `SELECT n.oid IS NOT NULL, pg_catalog.obj_description(n.oid, 'pg_namespace')
		FROM (SELECT pg_catalog.to_regnamespace($1)::oid AS oid) n`, string(c)).Scan(&exists, &note)
	if err != nil {
		return 0, fmt.Errorf("%s: read its migration: %w", c, err)
	}
	if !exists {
		return 0, nil
	}
	if note != nil {
		if m := componentLevelNote.FindStringSubmatch(*note); m != nil {
			n, _ := strconv.Atoi(m[1])
			return n, nil
		}
	}
	if _, err := componentAdoptable(ctx, q, c); err != nil {
		return 0, err
	}
	return 1, nil
}

// recordComponentMigration notes the component's migration level on its schema.
func recordComponentMigration(ctx context.Context, tx pgx.Tx, c Component, n int) error {
	_, err := tx.Exec(ctx, fmt.Sprintf(`COMMENT ON SCHEMA %s IS %s`, pgx.Identifier{string(c)}.Sanitize(),
		quoteLiteral(fmt.Sprintf("pgqgo %s migration %d", c, n))))
	if err != nil {
		return fmt.Errorf("%s: record migration %d: %w", c, n, err)
	}
	return nil
}

// quoteLiteral quotes a string as an SQL literal (for utility statements,
// which take no parameters).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// componentSQL returns the component's structure (structure.sql; "" for a
// component with migrations), functions and grants, in the order they must
// run.
func componentSQL(c Component) (structure, functions, grants string) {
	dir := path.Join("sql", string(c))
	var b strings.Builder
	entries, err := fs.ReadDir(files, path.Join(dir, "functions"))
	if err != nil {
		panic(err) // embedded at build time
	}
	for _, e := range entries {
		b.WriteString(mustRead(path.Join(dir, "functions", e.Name())))
		b.WriteString("\n")
	}
	if componentMigrations(c) == nil {
		structure = mustRead(path.Join(dir, "structure.sql"))
	}
	return structure, b.String(), mustRead(path.Join(dir, "grants.sql"))
}

// InstallComponent installs a component schema, or refreshes its functions
// when it is already there, in one transaction. Tables are created only when
// missing, so existing bookkeeping (pgq_ext's completed batches) is kept.
func InstallComponent(ctx context.Context, db Beginner, c Component) error {
	if !slices.Contains(components, c) {
		return fmt.Errorf("unknown schema component %q (want %s, %s, %s or %s)", c, Coop, Ext, Node, Londiste)
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("install %s: begin: %w", c, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgqgo.install'))`); err != nil {
		return fmt.Errorf("install %s: lock: %w", c, err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL check_function_bodies = off; SET LOCAL client_min_messages = warning`); err != nil {
		return fmt.Errorf("install %s: session settings: %w", c, err)
	}
	if c == Londiste {
		var hasNode bool
		if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regnamespace('pgq_node') IS NOT NULL`).Scan(&hasNode); err != nil {
			return fmt.Errorf("install %s: %w", c, err)
		}
		if !hasNode {
			return fmt.Errorf("install %s: %w; install it first (pgqgo install --with pgq_node,londiste)", c, ErrNoNode)
		}
	}
	if c == Coop || c == Node || c == Londiste {
		in, err := Inspect(ctx, tx)
		if err != nil {
			return err
		}
		if !in.HasPgq {
			return fmt.Errorf("install %s: %w; install it first (pgqgo install)", c, ErrNoPgq)
		}
	}
	structure, functions, grants := componentSQL(c)
	if ms := componentMigrations(c); ms != nil {
		level, err := componentMigration(ctx, tx, c)
		if err != nil {
			return fmt.Errorf("install %s: %w", c, err)
		}
		if level > len(ms) {
			return fmt.Errorf("install %s: %w: it is at migration %d, this binary knows %d", c, ErrNewerSchema, level, len(ms))
		}
		for _, m := range ms[level:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("install %s: migration %s: %w", c, m.Name, err)
			}
		}
		if err := recordComponentMigration(ctx, tx, c, len(ms)); err != nil {
			return fmt.Errorf("install %w", err)
		}
	}
	for _, step := range []struct{ what, sql string }{{"structure", structure}, {"functions", functions}, {"grants", grants}} {
		if step.sql == "" {
			continue
		}
		if _, err := tx.Exec(ctx, step.sql); err != nil {
			return fmt.Errorf("install %s: %s: %w", c, step.what, err)
		}
	}
	// never report success for a schema that is not what was installed: the
	// functions must be there and work against the tables as they now are
	if err := verifyComponent(ctx, tx, c); err != nil {
		return fmt.Errorf("install %s: %w (nothing was changed)", c, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("install %s: commit: %w", c, err)
	}
	return nil
}

// componentFunctions are the names of the functions a component's files
// define.
func componentFunctions(c Component) []string {
	_, functions, _ := componentSQL(c)
	seen := map[string]bool{}
	var out []string
	for _, m := range createFunction.FindAllStringSubmatch(functions, -1) {
		if !seen[m[1]] {
			seen[m[1]] = true
			out = append(out, m[1])
		}
	}
	return out
}

var createFunction = regexp.MustCompile(`(?i)CREATE OR REPLACE FUNCTION ([a-z_]+\.[a-z_]+)\(`)

// verifyComponent checks an installed component inside the installing
// transaction: every function exists, and read-only calls that touch every
// table (pgq_ext) or the group bookkeeping (pgq_coop) succeed.
func verifyComponent(ctx context.Context, tx pgx.Tx, c Component) error {
	for _, fn := range componentFunctions(c) {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
			WHERE n.nspname || '.' || p.proname = $1)`, fn).Scan(&ok); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if !ok {
			return fmt.Errorf("check: function %s missing after install", fn)
		}
	}
	var checks []string
	switch c {
	case Ext:
		checks = []string{
			`SELECT pgq_ext.version()`,
			`SELECT pgq_ext.is_batch_done('pgqgo install check', 'x', 0)`,
			`SELECT pgq_ext.is_event_done('pgqgo install check', 'x', 0, 0)`,
			`SELECT pgq_ext.get_last_tick('pgqgo install check', 'x')`,
			`SELECT count(*) FROM pgq_ext.completed_event WHERE consumer_id = '' AND subconsumer_id = '' AND batch_id = 0 AND event_id = 0`,
			`SELECT count(*) FROM pgq_ext.partial_batch WHERE consumer_id = '' AND subconsumer_id = '' AND cur_batch_id = 0`,
		}
	case Coop:
		checks = []string{`SELECT pgq_coop.version()`}
	case Londiste:
		checks = []string{`SELECT londiste.version()`,
			`SELECT count(*) FROM londiste.get_table_list('pgqgo install check')`,
			`SELECT count(*) FROM londiste.get_seq_list('pgqgo install check')`,
			`SELECT count(*) FROM londiste.get_valid_pending_fkeys('pgqgo install check')`,
			`SELECT count(*) FROM londiste.applied_execute WHERE execute_file = ''`}
	case Node:
		checks = []string{`SELECT pgq_node.version()`,
			`SELECT count(*) FROM pgq_node.get_node_info('pgqgo install check')`,
			`SELECT count(*) FROM pgq_node.get_queue_locations('pgqgo install check')`,
			`SELECT count(*) FROM pgq_node.get_consumer_info('pgqgo install check')`,
			`SELECT count(*) FROM pgq_node.get_subscriber_info('pgqgo install check')`}
	}
	for _, q := range checks {
		if _, err := tx.Exec(ctx, "SAVEPOINT pgqgo_check"); err != nil {
			return fmt.Errorf("check: %w", err)
		}
		if _, err := tx.Exec(ctx, q); err != nil {
			return fmt.Errorf("check %q failed: %w", q, err)
		}
		if _, err := tx.Exec(ctx, "RELEASE SAVEPOINT pgqgo_check"); err != nil {
			return fmt.Errorf("check: %w", err)
		}
	}
	return nil
}
