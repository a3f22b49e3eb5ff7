// Command pgqgo is the single binary of pgqgo: schema installation, queue
// administration, the ticker daemon and a demo. It only wires flags to the
// library packages and prints their results.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
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
		produceCmd(), consumeCmd(), tickCmd(), retryCmd(), maintCmd(), tickerCmd(), demoCmd())
	return root
}
