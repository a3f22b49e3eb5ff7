package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// Exit codes, documented in docs/cli.md.
const (
	exitOK          = 0
	exitError       = 1 // anything else: a refused operation, a server error
	exitUsage       = 2 // bad flags or arguments
	exitConnect     = 3 // the database could not be reached
	exitSchema      = 4 // no pgq schema, or one this binary cannot work with
	exitNotFound    = 5 // unknown queue or consumer
	exitCheckFailed = 6 // status --check: a threshold was exceeded
)

// exitErr carries the exit code for an error the user can act on.
type exitErr struct {
	code int
	err  error
}

func (e *exitErr) Error() string { return e.err.Error() }
func (e *exitErr) Unwrap() error { return e.err }

func withCode(code int, format string, args ...any) error {
	return &exitErr{code: code, err: fmt.Errorf(format, args...)}
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var e *exitErr
	if errors.As(err, &e) {
		return e.code
	}
	if errors.Is(err, pgq.ErrNoQueue) || errors.Is(err, errNoConsumer) {
		return exitNotFound
	}
	if strings.HasPrefix(err.Error(), "unknown command") || strings.HasPrefix(err.Error(), "unknown flag") {
		return exitUsage
	}
	return exitError
}

var errNoConsumer = errors.New("consumer not registered")

// noQueueHint follows every unknown-queue error.
const noQueueHint = "(pgqgo queue list shows the queues)"

// explain turns server errors with a known remedy into errors that say it.
func explain(err error) error {
	if errors.Is(err, pgq.ErrNoQueue) && !strings.Contains(err.Error(), noQueueHint) {
		// the same hint on every unknown-queue error
		return &exitErr{code: exitNotFound, err: fmt.Errorf("%w %s", err, noQueueHint)}
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) {
		return err
	}
	switch {
	case (pg.Code == "3F000" || pg.Code == "42883") && strings.Contains(pg.Message, "pgq_coop"):
		return withCode(exitSchema, "pgq_coop (cooperative consumers) is not installed in this database; install it with: "+
			"pgqgo install --with pgq_coop (or --only pgq_coop beside Skytools' pgq)")
	case (pg.Code == "3F000" || pg.Code == "42883") && strings.Contains(pg.Message, "pgq_ext"):
		return withCode(exitSchema, "pgq_ext is not installed in the target database; install it with: pgqgo install --only pgq_ext")
	case pg.Code == "P0001" && (strings.HasPrefix(pg.Message, "Not subscriber to queue") ||
		strings.HasPrefix(pg.Message, "No such queue") || strings.HasPrefix(pg.Message, "Event queue not")):
		// the queue was dropped, or the consumer unregistered, under our feet
		return &exitErr{code: exitNotFound, err: err}
	case pg.Code == "42501":
		return withCode(exitError, "permission denied: %s (the role needs pgq_reader, pgq_writer or pgq_admin as fits the command)", pg.Message)
	}
	return err
}

// usageArgs checks the positional arguments against their names, e.g.
// usageArgs("QUEUE", "CONSUMER").
func usageArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(names) == 0 && len(args) > 0 {
			return withCode(exitUsage, "%s takes no arguments (got %q); see %s --help", cmd.CommandPath(), args, cmd.CommandPath())
		}
		if len(args) != len(names) {
			return withCode(exitUsage, "%s needs %s (got %d argument(s)); see %s --help",
				cmd.CommandPath(), strings.Join(names, " "), len(args), cmd.CommandPath())
		}
		for i, a := range args {
			if a == "" {
				return withCode(exitUsage, "%s: %s must not be empty", cmd.CommandPath(), names[i])
			}
		}
		return nil
	}
}

// describeConnErr says what was tried when connecting failed.
func describeConnErr(cfg *pgx.ConnConfig, err error) error {
	where := cfg.Host
	if strings.HasPrefix(where, "/") {
		where = "socket directory " + where
	}
	return withCode(exitConnect, "cannot connect to database %q as user %q at %s port %d: %s "+
		"(set --db to a libpq string or postgres:// URL, or the PG* environment variables)",
		cfg.Database, cfg.User, where, cfg.Port, connErrText(err))
}

// connErrText is a connection error on one line, each distinct failure once
// (pgx tries every address and TLS mode, and joins their errors with newlines).
func connErrText(err error) string {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Unwrap() != nil {
		err = ce.Unwrap()
	}
	var parts []string
	for _, l := range strings.Split(err.Error(), "\n") {
		if l = strings.TrimSpace(l); l != "" && !slices.Contains(parts, l) {
			parts = append(parts, l)
		}
	}
	return strings.Join(parts, "; ")
}

// requirePgq checks that the database has a pgq schema this binary can
// drive: pgqgo's at this binary's migration level, or Skytools' PgQ 3.
func requirePgq(cmd *cobra.Command, conn *pgx.Conn) (schema.Installed, error) {
	in, err := schema.Inspect(cmd.Context(), conn)
	if err != nil {
		return in, err
	}
	db := conn.Config().Database
	want := len(schema.Migrations())
	switch {
	case !in.HasPgq:
		return in, withCode(exitSchema, "database %q has no pgq schema; install it with: pgqgo install --db ...", db)
	case !in.Managed && !strings.HasPrefix(in.APILevel, "3"):
		return in, withCode(exitSchema, "database %q has a pgq schema of API %q; pgqgo works with PgQ 3.x", db, in.APILevel)
	case in.Managed && in.Migration < want:
		return in, withCode(exitSchema, "database %q has pgqgo schema %s (migration %d) but this pgqgo needs migration %d; upgrade it with: pgqgo upgrade --db ...",
			db, in.Release, in.Migration, want)
	case in.Managed && in.Migration > want:
		return in, withCode(exitSchema, "database %q has pgqgo schema %s (migration %d), newer than this binary (%s, migration %d); use a newer pgqgo",
			db, in.Release, in.Migration, schema.Release, want)
	}
	return in, nil
}

// count says "1 event", "2 events" ("batch": "batches").
func count[N int | int64](n N, noun string) string {
	if n == 1 {
		return fmt.Sprintf("1 %s", noun)
	}
	if strings.HasSuffix(noun, "ch") || strings.HasSuffix(noun, "s") {
		return fmt.Sprintf("%d %ses", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
