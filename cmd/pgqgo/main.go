// Command pgqgo is the single binary of pgqgo: schema installation, queue
// administration, the ticker daemon and a demo. It only wires flags to the
// library packages and prints their results.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/schema"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCmd().ExecuteContext(ctx); err != nil {
		err = explain(err)
		fmt.Fprintln(os.Stderr, "pgqgo:", err)
		os.Exit(exitCode(err))
	}
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "pgqgo",
		Short:         "PgQ, the transactional PostgreSQL event queue, rebuilt in Go",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String("db", "", "database: libpq key=value string or postgres:// URL (default: PG* environment)")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withCode(exitUsage, "%v; see %s --help", err, cmd.CommandPath())
	})
	root.AddCommand(installCmd(), upgradeCmd(), versionCmd(), queueCmd(), consumerCmd(), statusCmd(),
		produceCmd(), consumeCmd(), tickCmd(), retryCmd(), maintCmd(), tickerCmd(), londisteCmd(), demoCmd())
	// pgqgo --version: the binary's version, as `pgqgo version` prints it
	// without a database
	root.Version = fmt.Sprintf("%s (schema migration %d, PgQ API %s)", schema.Release, len(schema.Migrations()), schema.APILevel)
	root.SetVersionTemplate("pgqgo {{.Version}}\n")
	refuseUnknownSubcommands(root)
	return root
}

// refuseUnknownSubcommands makes a command group (pgqgo queue, consumer)
// refuse an unknown subcommand as the root does (exit 2, with suggestions)
// instead of printing its help and exiting 0; without one it prints its help.
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if cmd.HasParent() && cmd.HasSubCommands() && cmd.Run == nil && cmd.RunE == nil {
		cmd.Args = cobra.ArbitraryArgs
		cmd.SuggestionsMinimumDistance = 2 // as the root's default
		cmd.RunE = func(c *cobra.Command, args []string) error {
			if len(args) == 0 {
				return c.Help()
			}
			hint := ""
			if s := c.SuggestionsFor(args[0]); len(s) > 0 {
				hint = " (did you mean " + strings.Join(s, " or ") + "?)"
			}
			return withCode(exitUsage, "unknown command %q for %q%s; see %s --help", args[0], c.CommandPath(), hint, c.CommandPath())
		}
	}
}
