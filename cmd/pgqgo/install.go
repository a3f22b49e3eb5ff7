package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/schema"
)

// connect opens the database named by --db (or the PG* environment).
func connect(cmd *cobra.Command) (*pgx.Conn, error) {
	dsn, _ := cmd.Flags().GetString("db")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, withCode(exitUsage, "bad --db: %v", err)
	}
	conn, err := pgx.ConnectConfig(cmd.Context(), cfg)
	if err != nil {
		return nil, describeConnErr(cfg, err)
	}
	return conn, nil
}

// connectPgq connects and checks the pgq schema (see requirePgq), returning
// what is installed.
func connectPgq(cmd *cobra.Command) (*pgx.Conn, schema.Installed, error) {
	conn, err := connect(cmd)
	if err != nil {
		return nil, schema.Installed{}, err
	}
	in, err := requirePgq(cmd, conn)
	if err != nil {
		conn.Close(context.Background())
		return nil, in, err
	}
	return conn, in, nil
}

func installCmd() *cobra.Command { return installOrUpgradeCmd(false) }

func upgradeCmd() *cobra.Command { return installOrUpgradeCmd(true) }

func installOrUpgradeCmd(upgrade bool) *cobra.Command {
	var dryRun, allDBs bool
	var with, only []string
	use, short := "install", "Install the pgq schema, or upgrade an older pgqgo schema in place (idempotent)"
	if upgrade {
		use, short = "upgrade", "Upgrade pgqgo's schema, or adopt Skytools PgQ 3.5 or 2.1, in place, in one transaction per database (--dry-run: show the plan)"
	}
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			if err := checkComponents(append(with, only...)); err != nil {
				return err // before anything is changed
			}
			conn, err := connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			if len(only) > 0 {
				return installComponents(cmd, conn, cmd.OutOrStdout(), only, dryRun)
			}
			if !allDBs {
				return installOne(cmd, conn, upgrade, dryRun, with)
			}
			// every database of the cluster that has a pgq schema, each in its own transaction
			rows, err := conn.Query(cmd.Context(), `SELECT datname FROM pg_catalog.pg_database
				WHERE datallowconn AND NOT datistemplate ORDER BY datname`)
			if err != nil {
				return fmt.Errorf("list databases: %w", err)
			}
			names, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("list databases: %w", err)
			}
			var failed []string
			for _, name := range names {
				cfg := conn.Config().Copy()
				cfg.Database = name
				dbConn, err := pgx.ConnectConfig(cmd.Context(), cfg)
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %v\n", name, describeConnErr(cfg, err))
					failed = append(failed, name)
					continue
				}
				in, err := schema.Inspect(cmd.Context(), dbConn)
				if err == nil && in.HasPgq {
					fmt.Fprintf(cmd.OutOrStdout(), "database %s:\n", name)
					err = installOne(cmd, dbConn, upgrade, dryRun, with)
				}
				dbConn.Close(context.Background())
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "database %s: %v\n", name, err)
					failed = append(failed, name)
				}
			}
			if len(failed) > 0 {
				return withCode(exitSchema, "not upgraded: %s (the others were)", strings.Join(failed, ", "))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "show what would change without changing anything")
	cmd.Flags().StringSliceVar(&with, "with", nil, "also install these schemas beside pgq: pgq_coop (cooperative consumers), pgq_ext (exactly-once bookkeeping), pgq_node (cascade bookkeeping), londiste (replication bookkeeping; with pgq_node)")
	cmd.Flags().StringSliceVar(&only, "only", nil, "install only these schemas, not pgq: pgq_ext in a consumer's target database, or pgq_coop / pgq_node / londiste beside an existing (e.g. Skytools) pgq")
	if upgrade {
		cmd.Flags().BoolVar(&allDBs, "all-databases", false, "upgrade every database of the cluster that has a pgq schema (connect with --db to any of them)")
	}
	return cmd
}

// installOne installs or upgrades (adopting Skytools PgQ when upgrade is
// set) the pgq schema of one database and reports what it did.
func installOne(cmd *cobra.Command, conn *pgx.Conn, upgrade, dryRun bool, with []string) (err error) {
	// pgq and the components commit together or not at all, and what was
	// done is printed only once it is committed
	tx, err := conn.Begin(cmd.Context())
	if err != nil {
		return fmt.Errorf("install: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) //nolint:errcheck // no-op after commit
	var out bytes.Buffer
	var missing []string
	defer func() {
		if err != nil {
			return
		}
		if err = tx.Commit(cmd.Context()); err != nil {
			err = fmt.Errorf("install: commit: %w", err)
			return
		}
		_, _ = cmd.OutOrStdout().Write(out.Bytes())
		if len(missing) > 0 {
			// the install worked; the roles' users will not until a DBA acts
			fmt.Fprintf(cmd.ErrOrStderr(), "warning: role(s) %s do not exist and %s may not create them: their rights were not granted.\n"+
				"  A DBA (superuser or CREATEROLE) runs: %s\n  then run `pgqgo install` again to grant them their rights.\n",
				strings.Join(missing, ", "), conn.Config().User, schema.RolesHint(missing))
		}
	}()
	if upgrade {
		in, err := schema.Inspect(cmd.Context(), conn)
		if err != nil {
			return err
		}
		if !in.HasPgq {
			return withCode(exitSchema, "database %q has no pgq schema to upgrade; install it with: pgqgo install", conn.Config().Database)
		}
	}
	res, err := schema.Install(cmd.Context(), tx, schema.InstallOptions{DryRun: dryRun, Adopt: upgrade})
	switch {
	case errors.Is(err, schema.ErrNotManaged):
		return withCode(exitSchema, "%v; to take it over in place run: pgqgo upgrade", err)
	case errors.Is(err, schema.ErrNewerSchema) || errors.Is(err, schema.ErrCannotAdopt):
		return &exitErr{code: exitSchema, err: err}
	case err != nil:
		return err
	}
	missing = res.MissingRoles
	switch {
	case !res.Changed():
		fmt.Fprintf(&out, "pgq schema already at pgqgo %s (migration %d): nothing to do\n", res.Release, res.Migration)
	case dryRun:
		fmt.Fprintln(&out, "would:")
		for _, s := range res.Steps {
			fmt.Fprintln(&out, "  -", s)
		}
	default:
		from := "nothing"
		switch {
		case res.Before.Managed:
			from = fmt.Sprintf("pgqgo %s (migration %d)", res.Before.Release, res.Before.Migration)
		case res.Before.HasPgq:
			from = "Skytools PgQ " + res.Before.APILevel
		}
		fmt.Fprintf(&out, "installed pgqgo %s (migration %d) over %s:\n", res.Release, res.Migration, from)
		for _, s := range res.Steps {
			fmt.Fprintln(&out, "  -", s)
		}
	}
	return installComponents(cmd, tx, &out, with, dryRun)
}

// checkComponents refuses unknown component names, before anything is done.
func checkComponents(names []string) error {
	for _, name := range names {
		c := schema.Component(name)
		if !slices.Contains(schema.Components(), c) {
			return withCode(exitUsage, "unknown schema %q: choose from %s, %s, %s, %s", name, schema.Coop, schema.Ext, schema.Node, schema.Londiste)
		}
	}
	return nil
}

// installComponents installs or refreshes the named component schemas.
func installComponents(cmd *cobra.Command, conn schema.Beginner, out io.Writer, names []string, dryRun bool) error {
	if err := checkComponents(names); err != nil {
		return err
	}
	// in dependency order (londiste after pgq_node), whatever order given
	slices.SortStableFunc(names, func(a, b string) int {
		return slices.Index(schema.Components(), schema.Component(a)) - slices.Index(schema.Components(), schema.Component(b))
	})
	for _, name := range names {
		if dryRun {
			fmt.Fprintf(out, "would install or refresh schema %s\n", name)
			continue
		}
		if err := schema.InstallComponent(cmd.Context(), conn, schema.Component(name)); err != nil {
			if errors.Is(err, schema.ErrNoPgq) || errors.Is(err, schema.ErrNoNode) {
				return &exitErr{code: exitSchema, err: err}
			}
			return err
		}
		fmt.Fprintf(out, "installed schema %s\n", name)
	}
	return nil
}

func versionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print pgqgo's version and, with --db or PG* settings, the installed schema's",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "pgqgo binary: %s (schema migration %d, PgQ API %s)\n",
				schema.Release, len(schema.Migrations()), schema.APILevel)
			if dsn, _ := cmd.Flags().GetString("db"); dsn == "" && !pgEnvSet() {
				return nil
			}
			conn, err := connect(cmd)
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			in, err := schema.Inspect(cmd.Context(), conn)
			if err != nil {
				return err
			}
			switch {
			case !in.HasPgq:
				fmt.Fprintln(out, "database: no pgq schema installed")
			case !in.Managed:
				fmt.Fprintf(out, "database: pgq %s, not installed by pgqgo\n", in.APILevel)
			default:
				fmt.Fprintf(out, "database: pgqgo %s (migration %d, PgQ API %s)\n", in.Release, in.Migration, in.APILevel)
			}
			return nil
		},
	}
}
