package main

import (
	"time"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/internal/demo"
)

func demoCmd() *cobra.Command {
	var opts demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a live demo: throwaway PostgreSQL, ticker, a producer and two consumers",
		Long: "Starts a private PostgreSQL cluster (initdb + postgres on a temporary socket; as root the\n" +
			"server runs as the 'postgres' OS user), installs the pgq schema, starts the ticker daemon, a\n" +
			"producer and two consumers, prints events/s in and out every second for --duration (or until\n" +
			"Ctrl-C), then a summary, and removes everything. --keep leaves the cluster running and prints\n" +
			"how to connect; with --db the demo runs in that database instead and drops its queue after.",
		Args: usageArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.DB, _ = cmd.Flags().GetString("db")
			_, err := demo.Run(cmd.Context(), cmd.OutOrStdout(), opts)
			return err
		},
	}
	cmd.Flags().DurationVar(&opts.Duration, "duration", 10*time.Second, "how long to produce")
	cmd.Flags().IntVar(&opts.Rate, "rate", 2000, "events per second to produce")
	cmd.Flags().BoolVar(&opts.Keep, "keep", false, "leave the throwaway cluster running")
	return cmd
}
