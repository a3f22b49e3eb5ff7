// Package schema holds pgqgo's `pgq` schema, PgQ 3.5's tables and SQL API in
// plain SQL and PL/pgSQL, and installs or upgrades it in place.
//
// Layout of the embedded files:
//
//	sql/migrations/NNNN_*.sql  structure changes, applied once each, in order
//	sql/functions/*.sql        one function (with its overloads) per file;
//	                           reloaded whenever they change
//	sql/roles.sql              pgq_reader, pgq_writer, pgq_admin
//	sql/grants.sql             PgQ 3.5's grants
//
// The installed release, migration level and a checksum of the function code
// are kept in pgq.pgqgo_schema, so installing the same release twice changes
// nothing, and an older installation is upgraded by the migrations it lacks.
package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Release is the pgqgo release whose schema this package installs.
const Release = "0.3.0"

// APILevel is the PgQ API level the schema implements (pgq.version()).
const APILevel = "3.5"

//go:embed all:sql
var files embed.FS

// Migration is one numbered structure change.
type Migration struct {
	Number int
	Name   string
	SQL    string
}

// Migrations returns the embedded migrations in order.
func Migrations() []Migration {
	ms, err := migrationsIn(files, "sql/migrations")
	if err != nil {
		panic(err)
	}
	return ms
}

// migrationsIn reads the migrations in dir of a schema source tree (the
// embedded one, or an old release's: see Script).
func migrationsIn(src fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(src, dir)
	if err != nil {
		return nil, err
	}
	var out []Migration
	for _, e := range entries {
		name := e.Name()
		num, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil || !strings.HasSuffix(name, ".sql") {
			return nil, fmt.Errorf("schema: bad migration file name %s", name)
		}
		body, err := fs.ReadFile(src, path.Join(dir, name))
		if err != nil {
			return nil, err
		}
		out = append(out, Migration{Number: num, Name: strings.TrimSuffix(name, ".sql"), SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Number < out[j].Number })
	for i, m := range out {
		if m.Number != i+1 {
			return nil, fmt.Errorf("schema: migrations must be numbered 1..n without gaps; found %d at position %d", m.Number, i+1)
		}
	}
	return out, nil
}

// functionsSQL returns every function file, concatenated in name order.
func functionsSQL() string {
	s, err := functionsIn(files)
	if err != nil {
		panic(err)
	}
	return s
}

func functionsIn(src fs.FS) (string, error) {
	entries, err := fs.ReadDir(src, "sql/functions")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		body, err := fs.ReadFile(src, path.Join("sql/functions", e.Name()))
		if err != nil {
			return "", err
		}
		b.Write(body)
		b.WriteString("\n")
	}
	return b.String(), nil
}

func mustRead(name string) string {
	body, err := files.ReadFile(name)
	if err != nil {
		panic(err)
	}
	return string(body)
}

// codeChecksum identifies the function and grant code, so a reinstall of the
// same release with unchanged code is a no-op.
func codeChecksum() string {
	sum, err := checksumIn(files)
	if err != nil {
		panic(err)
	}
	return sum
}

func checksumIn(src fs.FS) (string, error) {
	funcs, err := functionsIn(src)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(funcs))
	for _, name := range []string{"sql/grants.sql", "sql/roles.sql"} {
		body, err := fs.ReadFile(src, name)
		if err != nil {
			return "", err
		}
		h.Write(body)
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

// Installed describes what a database holds.
type Installed struct {
	// HasPgq is true when a schema named pgq exists.
	HasPgq bool
	// Managed is true when that schema was installed by pgqgo.
	Managed   bool
	Release   string
	Migration int
	Checksum  string
	// APILevel is pgq.version(), when callable.
	APILevel string
}

// Querier is what Inspect needs: a connection, pool or transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Inspect reports what is installed in the database.
func Inspect(ctx context.Context, q Querier) (Installed, error) {
	var in Installed
	var hasVersion bool
	err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'pgq'),
		to_regclass('pgq.pgqgo_schema') IS NOT NULL,
		to_regprocedure('pgq.version()') IS NOT NULL`).Scan(&in.HasPgq, &in.Managed, &hasVersion)
	if err != nil {
		return in, fmt.Errorf("inspect pgq schema: %w", err)
	}
	if hasVersion {
		if err := q.QueryRow(ctx, `SELECT coalesce(pgq.version(), '')`).Scan(&in.APILevel); err != nil {
			return in, fmt.Errorf("read pgq.version(): %w", err)
		}
	}
	if in.Managed {
		err := q.QueryRow(ctx, `SELECT release, migration, checksum FROM pgq.pgqgo_schema`).
			Scan(&in.Release, &in.Migration, &in.Checksum)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return in, fmt.Errorf("read pgq.pgqgo_schema: %w", err)
		}
	}
	return in, nil
}

// ErrNotManaged is returned when the database has a pgq schema that pgqgo did
// not install (for example Skytools' PgQ). pgqgo leaves it untouched.
var ErrNotManaged = errors.New("database has a pgq schema that was not installed by pgqgo (Skytools PgQ?); it was left untouched")

// ErrNewerSchema is returned when the database's schema is newer than this binary.
var ErrNewerSchema = errors.New("installed pgq schema is newer than this pgqgo binary")

// ErrNoPgq is returned when a component that stands on pgq (pgq_coop) is
// installed in a database without a pgq schema.
var ErrNoPgq = errors.New("the database has no pgq schema")

// InstallOptions tune Install.
type InstallOptions struct {
	// DryRun computes and reports the plan without changing anything.
	DryRun bool
	// UpToMigration stops after this migration (0: all). Used by tests that
	// build an older installation to upgrade.
	UpToMigration int
	// Adopt takes over a Skytools PgQ 3.5 installation (the C extension, with
	// or without pgq_node/londiste, or PgQ installed as plain SQL) in place:
	// see adopt.go. Without it such a database is refused (ErrNotManaged).
	Adopt bool
}

// Result reports what Install did (or, with DryRun, would do).
type Result struct {
	Before  Installed
	Release string
	// Migration is the migration level after the install.
	Migration int
	// Steps are human-readable descriptions of the changes, in order.
	Steps []string
	// MissingRoles are the PgQ roles (pgq_reader, pgq_writer, pgq_admin)
	// that do not exist after the install: the installing role could not
	// create them, and their grants were skipped. RolesHint says what a DBA
	// must run; installing again afterwards grants them their rights.
	MissingRoles []string
}

// pgqRoles are PgQ's three roles, and a right of each that the grants give
// (when a role has it, the grants ran while the role existed).
var pgqRoles = []struct{ name, probe string }{
	{"pgq_reader", "pgq.next_batch(text,text)"},
	{"pgq_writer", "pgq.insert_event_bulk(text,text[],text[],text[],text[],text[],text[])"},
	{"pgq_admin", "pgq.create_queue(text)"},
}

// RolesHint is what a DBA runs to create the missing PgQ roles (as PgQ 3.5
// makes them: pgq_admin a member of the other two), after which
// `pgqgo install` grants them their rights.
func RolesHint(missing []string) string {
	var b strings.Builder
	for _, r := range missing {
		fmt.Fprintf(&b, "CREATE ROLE %s NOLOGIN; ", r)
	}
	b.WriteString("GRANT pgq_reader, pgq_writer TO pgq_admin;")
	return b.String()
}

// roleState reports the PgQ roles that do not exist, and those that exist
// but lack the rights the grants give them (created after the last install,
// or by a DBA after an install that could not create them); the second only
// when the schema is there to probe.
func roleState(ctx context.Context, q Querier, probe bool) (missing, ungranted []string, err error) {
	for _, r := range pgqRoles {
		var exists, granted bool
		if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)`, r.name).Scan(&exists); err != nil {
			return nil, nil, fmt.Errorf("install: roles: %w", err)
		}
		if !exists {
			missing = append(missing, r.name)
			continue
		}
		if !probe {
			continue
		}
		// the function's right, and the event tables' (pgq.grant_perms copies
		// pgq.event_template's to every queue's tables)
		err := q.QueryRow(ctx, `SELECT coalesce(pg_catalog.has_function_privilege($1, pg_catalog.to_regprocedure($2), 'EXECUTE'), false)
				AND NOT EXISTS (SELECT 1 FROM pgq.queue x, pg_catalog.generate_series(-1, x.queue_ntables - 1) t
				                 WHERE pg_catalog.to_regclass(x.queue_data_pfx || CASE WHEN t < 0 THEN '' ELSE '_' || t END) IS NOT NULL
				                   AND pg_catalog.has_table_privilege($1, 'pgq.event_template', 'SELECT')
				                   AND NOT pg_catalog.has_table_privilege($1,
				                         pg_catalog.to_regclass(x.queue_data_pfx || CASE WHEN t < 0 THEN '' ELSE '_' || t END), 'SELECT'))`,
			r.name, r.probe).Scan(&granted)
		if err != nil {
			return nil, nil, fmt.Errorf("install: rights of %s: %w", r.name, err)
		}
		if !granted {
			ungranted = append(ungranted, r.name)
		}
	}
	return missing, ungranted, nil
}

// Changed reports whether the install changed (or would change) anything.
func (r Result) Changed() bool { return len(r.Steps) > 0 }

// Beginner starts transactions: *pgx.Conn, *pgxpool.Pool and pgx.Tx all are.
type Beginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

// Install installs the pgq schema, or upgrades an older pgqgo installation in
// place, in one transaction. Installing the same release again is a no-op.
// It needs CREATE on the database (not superuser); the PgQ roles are created
// when the installing role may create roles, and their grants skipped if not.
func Install(ctx context.Context, db Beginner, opts InstallOptions) (Result, error) {
	migrations := Migrations()
	target := len(migrations)
	if opts.UpToMigration > 0 && opts.UpToMigration < target {
		target = opts.UpToMigration
	}
	res := Result{Release: Release, Migration: target}

	tx, err := db.Begin(ctx)
	if err != nil {
		return res, fmt.Errorf("install: begin: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit

	// One installer at a time per database.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('pgqgo.install'))`); err != nil {
		return res, fmt.Errorf("install: lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `SET LOCAL check_function_bodies = off; SET LOCAL client_min_messages = warning`); err != nil {
		return res, fmt.Errorf("install: session settings: %w", err)
	}
	before, err := Inspect(ctx, tx)
	if err != nil {
		return res, err
	}
	res.Before = before
	var adopting adoption
	if before.HasPgq && !before.Managed {
		if !opts.Adopt {
			return res, ErrNotManaged
		}
		if adopting, err = adoptionPlan(ctx, tx, before); err != nil {
			return res, err
		}
		before.Migration = 1 // PgQ 3.5's tables are migration 0001's (2.1's are made so)
	}
	adopt := adopting.steps
	if before.Migration > len(migrations) {
		return res, fmt.Errorf("%w: database is at migration %d (release %s), this binary knows %d (release %s)",
			ErrNewerSchema, before.Migration, before.Release, len(migrations), Release)
	}
	sum := codeChecksum()
	current := before.Managed && before.Migration >= target && before.Release == Release && before.Checksum == sum
	missing, ungranted, err := roleState(ctx, tx, current)
	if err != nil {
		return res, err
	}
	if current {
		var mayCreate bool
		if err := tx.QueryRow(ctx, `SELECT rolsuper OR rolcreaterole FROM pg_catalog.pg_roles WHERE rolname = current_user`).Scan(&mayCreate); err != nil {
			return res, fmt.Errorf("install: roles: %w", err)
		}
		if len(missing) > 0 && mayCreate {
			res.Steps = append(res.Steps, "create roles "+strings.Join(missing, ", ")+" and grant them their rights")
		} else {
			res.MissingRoles = missing
		}
		if len(ungranted) > 0 {
			// roles that came after the install: grant them their rights
			res.Steps = append(res.Steps, "grant rights to "+strings.Join(ungranted, ", ")+" (roles made after the last install)")
		}
		if !res.Changed() || opts.DryRun {
			return res, nil // already installed: nothing to do
		}
		if err := grantAll(ctx, tx); err != nil {
			return res, err
		}
		if err := tx.Commit(ctx); err != nil {
			return res, fmt.Errorf("install: commit: %w", err)
		}
		return res, nil
	}

	if len(missing) > 0 {
		res.Steps = append(res.Steps, "create roles "+strings.Join(missing, ", ")+" if allowed (their grants are skipped otherwise)")
	}
	res.Steps = append(res.Steps, adopt...)
	for _, m := range migrations[before.Migration:target] {
		res.Steps = append(res.Steps, "apply migration "+m.Name)
	}
	res.Steps = append(res.Steps, "load functions and grants (release "+Release+")")
	if opts.DryRun {
		return res, nil
	}

	run := func(what, sql string) error {
		if _, err := tx.Exec(ctx, sql); err != nil {
			return fmt.Errorf("install: %s: %w", what, err)
		}
		return nil
	}
	if adopting.from21 {
		if err := run("adopt: convert PgQ 2.1's tables", mustRead("sql/adopt/from21.sql")); err != nil {
			return res, err
		}
	}
	if len(adopt) > 0 {
		if err := run("adopt: detach from the extensions", mustRead("sql/adopt/dissolve.sql")); err != nil {
			return res, err
		}
		if err := run("adopt: bookkeeping table", mustRead("sql/adopt/adopt.sql")); err != nil {
			return res, err
		}
	}
	for _, m := range migrations[before.Migration:target] {
		if err := run("migration "+m.Name, m.SQL); err != nil {
			return res, err
		}
	}
	if adopting.from21 {
		// 2.1's failed events, kept aside by from21.sql, into the dead-letter table (migration 0002)
		if err := run("adopt: failed events", `INSERT INTO pgq.dead_letter (dl_time, dl_queue, dl_consumer, dl_reason,
				ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4)
			SELECT dl_time, dl_queue, dl_consumer, dl_reason, ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data,
			       ev_extra1, ev_extra2, ev_extra3, ev_extra4
			  FROM pg_temp.pgqgo_adopt21_failed ORDER BY dl_time, ev_id`); err != nil {
			return res, err
		}
	}
	if err := run("functions", functionsSQL()); err != nil {
		return res, err
	}
	for _, c := range adopting.components {
		// Skytools' pgq_node and londiste: pgqgo's functions and grants over their tables
		_, functions, grants := componentSQL(c)
		if err := run("adopt: "+string(c)+" functions", functions); err != nil {
			return res, err
		}
		if err := run("adopt: "+string(c)+" grants", grants); err != nil {
			return res, err
		}
		if err := recordComponentMigration(ctx, tx, c, 1); err != nil { // Skytools' tables are migration 0001's
			return res, fmt.Errorf("install: adopt: %w", err)
		}
	}
	// 2.1's column-spec trigger, where tables still use it: pgqgo's, made from sqltriga
	if err := run("logtriga", `SELECT pgq._refresh_logtriga()`); err != nil {
		return res, err
	}
	// generated functions (the insert paths) must exist before they are granted;
	// adoption replaces PgQ's own insert_event, which the dispatcher otherwise
	// leaves alone as a site's replacement
	if len(adopt) > 0 {
		if err := run("adopt: insert_event", `SET LOCAL pgqgo.adopting = 'on'`); err != nil {
			return res, err
		}
	}
	if err := run("insert dispatcher", `SELECT pgq._refresh_insert_dispatch()`); err != nil {
		return res, err
	}
	if err := grantAll(ctx, tx); err != nil {
		return res, err
	}
	if res.MissingRoles, _, err = roleState(ctx, tx, false); err != nil {
		return res, err
	}
	_, err = tx.Exec(ctx, `INSERT INTO pgq.pgqgo_schema (release, migration, checksum) VALUES ($1, $2, $3)
		ON CONFLICT (singleton) DO UPDATE SET release = excluded.release, migration = excluded.migration,
			checksum = excluded.checksum, upgraded_at = now()`, Release, target, sum)
	if err != nil {
		return res, fmt.Errorf("install: record version: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return res, fmt.Errorf("install: commit: %w", err)
	}
	return res, nil
}

// grantAll gives the PgQ roles that exist their rights: memberships
// (roles.sql, which also creates missing roles when it may), the schema's
// grants, and every queue's event tables (as pgq.grant_perms does when a
// queue is created).
func grantAll(ctx context.Context, tx pgx.Tx) error {
	for _, step := range []struct{ what, sql string }{
		{"roles", mustRead("sql/roles.sql")},
		{"grants", mustRead("sql/grants.sql")},
		{"queue grants", `SELECT count(pgq.grant_perms(queue_name)) FROM pgq.queue`},
	} {
		if _, err := tx.Exec(ctx, step.sql); err != nil {
			return fmt.Errorf("install: %s: %w", step.what, err)
		}
	}
	return nil
}
