package schema

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
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

// componentSQL returns the component's structure, functions and grants, in
// the order they must run.
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
	return mustRead(path.Join(dir, "structure.sql")), b.String(), mustRead(path.Join(dir, "grants.sql"))
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
	for _, step := range []struct{ what, sql string }{{"structure", structure}, {"functions", functions}, {"grants", grants}} {
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
