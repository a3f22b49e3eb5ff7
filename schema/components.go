package schema

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"strings"
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
)

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
	if c != Coop && c != Ext {
		return fmt.Errorf("unknown schema component %q (want %s or %s)", c, Coop, Ext)
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
	if c == Coop {
		in, err := Inspect(ctx, tx)
		if err != nil {
			return err
		}
		if !in.HasPgq {
			return fmt.Errorf("install %s: the database has no pgq schema; install it first (pgqgo install)", c)
		}
	}
	structure, functions, grants := componentSQL(c)
	for _, step := range []struct{ what, sql string }{{"structure", structure}, {"functions", functions}, {"grants", grants}} {
		if _, err := tx.Exec(ctx, step.sql); err != nil {
			return fmt.Errorf("install %s: %s: %w", c, step.what, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("install %s: commit: %w", c, err)
	}
	return nil
}
