package main

import (
	"github.com/spf13/cobra"

	"pgqgo/internal/demo"
)

func demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run a guided demo on a throwaway local PostgreSQL cluster",
		Long: "Starts a private PostgreSQL cluster (initdb + postgres on a temporary socket; as root the\n" +
			"server runs as the 'postgres' OS user), installs the pgq schema, produces events in a\n" +
			"transaction, ticks, consumes the batch and prints it. Nothing outlives the demo.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return demo.Run(cmd.Context(), cmd.OutOrStdout())
		},
	}
}
