package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/replica"
	"github.com/pgqgo/pgqgo/ticker"
)

const londisteHelp = `Table replication, a drop-in for londiste3: reads londiste3's ini file ([londiste]
section) unchanged and keeps londiste3's state in the pgq_node and londiste schemas, so a
node can be switched between londiste3 and pgqgo at any time. See docs/replication.md.

Usage: pgqgo londiste CONFIG.ini COMMAND [args] [flags]

Node commands:
  create-root NODE [PUBLIC_CONNSTR]     make this database the root
  create-branch NODE [PUBLIC_CONNSTR] --provider=CONNSTR [--sync-watermark=NODE,...]
  create-leaf NODE [PUBLIC_CONNSTR] --provider=CONNSTR
  members                               list the cascade's nodes
  status [--check] [--json]             the cascade as a tree, with lag and errors
  node-status, node-info                this node
  pause, resume                         pause the worker (waits for it to acknowledge)
  change-provider --provider=NODE       make this node (or --node) read from another node
  takeover OLD_NODE [--all] [--dead-root | --dead-branch]
                                        put this node in OLD_NODE's place (switchover, failover)
  resurrect                             an old root back as a branch after a failover
  tag-dead NODE..., tag-alive NODE...   mark nodes dead or alive everywhere
  wait-root, wait-provider              wait until this node has caught up
  drop-node NODE                        remove a leaf

Replication commands:
  add-table TABLE... | --all            replicate tables (see add-table --help)
  remove-table TABLE...                 stop replicating tables
  change-handler TABLE --handler=H
  add-seq SEQ... | --all, remove-seq SEQ...
  tables, seqs, missing                 what is replicated, what could be
  resync TABLE...                       copy tables again
  wait-sync                             wait until every table is in sync
  execute FILE...                       run SQL on the root and on every node at the same position
  show-handlers                         the table handlers pgqgo has
  compare [TABLE...]                    count and checksum both sides (exit code: tables that differ)
  repair [TABLE...] [--apply]           fix rows that differ (fix.TABLE.sql, or applied with --apply)
  worker [-d]                           the replication daemon

Daemon control (on the worker's pidfile): -s stop, -k kill, -r reload.
`

// londisteCmd is `pgqgo londiste CONFIG COMMAND ...`: the config comes
// first, as in londiste3, so the command line is parsed by hand and the
// command handed to a command tree of its own.
func londisteCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "londiste CONFIG.ini COMMAND [args] [flags]",
		Short:              "Table replication: a drop-in for londiste3 (same ini files, commands and state)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 || args[0] == "-h" || args[0] == "--help" {
				fmt.Fprint(cmd.OutOrStdout(), londisteHelp)
				return nil
			}
			if args[0] == "--ini" {
				fmt.Fprint(cmd.OutOrStdout(), replica.SampleINI)
				return nil
			}
			path, rest := args[0], args[1:]
			if strings.HasPrefix(path, "-") {
				return withCode(exitUsage, "londiste: the config file comes first: pgqgo londiste CONFIG.ini COMMAND")
			}
			if len(rest) == 0 {
				return withCode(exitUsage, "londiste: a command is needed; see pgqgo londiste --help")
			}
			// londiste3 CONF -s / -k / -r: signal the worker
			if len(rest) == 1 && (rest[0] == "-s" || rest[0] == "-k" || rest[0] == "-r") {
				rest = []string{"worker", rest[0]}
			}
			tree := londisteTree(path)
			tree.SetArgs(rest)
			tree.SetOut(cmd.OutOrStdout())
			tree.SetErr(cmd.ErrOrStderr())
			return tree.ExecuteContext(cmd.Context())
		},
	}
}

type londisteEnv struct {
	path    string
	set     []string
	quiet   bool
	verbose int
}

func (e *londisteEnv) config() (*replica.Config, error) {
	over := map[string]string{}
	for _, s := range e.set {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, withCode(exitUsage, "--set %q: want KEY=VALUE", s)
		}
		over[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	cfg, err := replica.LoadConfig(e.path, over)
	if err != nil {
		return nil, &exitErr{code: exitUsage, err: err}
	}
	return cfg, nil
}

// logger logs to stderr (unless quiet) and to the config's logfile.
func (e *londisteEnv) logger(cfg *replica.Config, stderr io.Writer) (*slog.Logger, func(), error) {
	// the ticker's logger, with the worker's logfile and no syslog
	return tickerLogger(ticker.Config{LogFile: cfg.LogFile, LogFormat: "text"}, stderr, e.quiet, e.verbose > 0)
}

func londisteTree(path string) *cobra.Command {
	env := &londisteEnv{path: path}
	root := &cobra.Command{
		Use:           "pgqgo londiste " + path,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringArrayVar(&env.set, "set", nil, "override a config key: --set KEY=VALUE (repeatable)")
	pf.BoolVarP(&env.quiet, "quiet", "q", false, "log nothing to stderr")
	pf.CountVarP(&env.verbose, "verbose", "v", "verbose log")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return withCode(exitUsage, "%v; see pgqgo londiste CONFIG %s --help", err, cmd.Name())
	})
	// admin runs fn with the node's Admin
	admin := func(fn func(cmd *cobra.Command, a *replica.Admin, args []string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			cfg, err := env.config()
			if err != nil {
				return err
			}
			log, closeLog, err := env.logger(cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeLog()
			a, err := replica.NewAdmin(cmd.Context(), cfg, log)
			if err != nil {
				return &exitErr{code: exitConnect, err: err}
			}
			defer a.Close()
			return fn(cmd, a, args)
		}
	}
	var provider string
	createRoot := &cobra.Command{Use: "create-root [NODE [PUBLIC_CONNSTR]]", Short: "make this database the root node", Args: cobra.MaximumNArgs(2),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			args = append(args, "", "")
			return a.CreateRoot(cmd.Context(), args[0], args[1])
		})}
	createLeaf := &cobra.Command{Use: "create-leaf [NODE [PUBLIC_CONNSTR]] --provider=CONNSTR", Short: "make this database a leaf node", Args: cobra.MaximumNArgs(2),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			args = append(args, "", "")
			return a.CreateLeaf(cmd.Context(), args[0], args[1], provider)
		})}
	createLeaf.Flags().StringVar(&provider, "provider", "", "the provider node's connect string")
	var syncWM string
	createBranch := &cobra.Command{Use: "create-branch [NODE [PUBLIC_CONNSTR]] --provider=CONNSTR [--sync-watermark=NODE,...]",
		Short: "make this database a branch node (a copy of the queue, for nodes below it)", Args: cobra.MaximumNArgs(2),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			args = append(args, "", "")
			var nodes []string
			if cmd.Flags().Changed("sync-watermark") {
				nodes = []string{}
				for _, n := range strings.Split(syncWM, ",") {
					if n = strings.TrimSpace(n); n != "" {
						nodes = append(nodes, n)
					}
				}
			}
			return a.CreateBranch(cmd.Context(), args[0], args[1], provider, nodes)
		})}
	createBranch.Flags().StringVar(&provider, "provider", "", "the provider node's connect string")
	createBranch.Flags().StringVar(&syncWM, "sync-watermark", "", "nodes (comma-separated) whose local watermarks stand in for the global one here")
	for _, c := range []*cobra.Command{createRoot, createLeaf, createBranch} {
		c.Flags().String("worker", "", "accepted for londiste3 compatibility: the worker name is the config's")
		c.Flags().Bool("nocheck", false, "accepted for londiste3 compatibility")
	}
	root.AddCommand(createRoot, createLeaf, createBranch)

	var a21 replica.Adopt21Options
	adopt21 := &cobra.Command{Use: "adopt-21 [NODE [PUBLIC_CONNSTR]] [--provider=CONNSTR] [--old-job=JOB] [--dry-run]",
		Short: "move a londiste 2.1 provider or subscriber of the queue onto pgqgo londiste in place (after pgqgo upgrade)",
		Args:  cobra.MaximumNArgs(2),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			args = append(args, "", "")
			opts := a21
			opts.Name, opts.Location = args[0], args[1]
			steps, err := a.Adopt21(cmd.Context(), opts)
			head := "done:"
			if opts.DryRun {
				head = "would:"
			} else if err != nil {
				head = "done before the error:"
			}
			if len(steps) > 0 {
				fmt.Fprintln(cmd.OutOrStdout(), head)
				for _, s := range steps {
					fmt.Fprintln(cmd.OutOrStdout(), "  - "+s)
				}
			}
			return err
		})}
	adopt21.Flags().StringVar(&a21.Provider, "provider", "", "a subscriber's provider (adopted first): its connect string")
	adopt21.Flags().StringVar(&a21.OldJob, "old-job", "", "the londiste 2.1 job whose position to continue from (default: the only one)")
	adopt21.Flags().BoolVar(&a21.DryRun, "dry-run", false, "print the plan and change nothing")
	root.AddCommand(adopt21)

	root.AddCommand(&cobra.Command{Use: "members", Short: "list the cascade's nodes", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			ms, err := a.Members(cmd.Context())
			if err != nil {
				return err
			}
			rows := [][]string{}
			for _, m := range ms {
				rows = append(rows, []string{m.Name, pyBool(m.Dead), m.Location})
			}
			printTable(cmd.OutOrStdout(), fmt.Sprintf("Member info on %s@%s:", nodeName(cmd, a), a.Queue()), []string{"node_name", "dead", "node_location"}, rows)
			return nil
		})})

	var check, asJSON bool
	var maxLag time.Duration
	status := &cobra.Command{Use: "status", Short: "the cascade as a tree: lag, ticks, tables, errors", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			local, nodes, err := a.Status(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(nodes); err != nil {
					return err
				}
			} else {
				fmt.Fprint(cmd.OutOrStdout(), replica.RenderTree(a.Queue(), local, nodes))
			}
			if check {
				if p := replica.Problems(nodes, maxLag); len(p) > 0 {
					return withCode(exitCheckFailed, "status --check: %s", strings.Join(p, "; "))
				}
			}
			return nil
		})}
	status.Flags().BoolVar(&check, "check", false, "exit 6 when a node is unreachable, dead, paused, in error, lagging over --max-lag, or has a consumer further behind (which holds its queue's rotation)")
	status.Flags().DurationVar(&maxLag, "max-lag", time.Minute, "lag limit for --check")
	status.Flags().BoolVar(&asJSON, "json", false, "JSON output")
	status.Flags().Bool("compact", false, "accepted for londiste3 compatibility")
	root.AddCommand(status)

	nodeInfo := func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
		out, err := a.NodeInfoText(cmd.Context())
		if err != nil {
			return err
		}
		fmt.Fprint(cmd.OutOrStdout(), out)
		return nil
	}
	root.AddCommand(&cobra.Command{Use: "node-info", Short: "this node: type, status, provider, connect strings", Args: cobra.NoArgs, RunE: admin(nodeInfo)},
		&cobra.Command{Use: "node-status", Short: "this node (as node-info)", Args: cobra.NoArgs, RunE: admin(nodeInfo)})

	var consumer string
	for _, p := range []bool{true, false} {
		name, short := "pause", "pause the worker and wait for it to acknowledge"
		if !p {
			name, short = "resume", "resume the worker and wait for it to acknowledge"
		}
		c := &cobra.Command{Use: name, Short: short, Args: cobra.NoArgs,
			RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
				return a.SetPaused(cmd.Context(), consumer, p, 60*time.Second)
			})}
		c.Flags().StringVar(&consumer, "consumer", "", "the cascaded consumer (default: this node's worker)")
		root.AddCommand(c)
	}
	var cp replica.ChangeProviderOptions
	var cpTo string
	changeProvider := &cobra.Command{Use: "change-provider --provider=NODE [--node=NODE | --consumer=C]",
		Short: "make a node (default: this one) read from another node", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			return a.ChangeProvider(cmd.Context(), cpTo, cp)
		})}
	changeProvider.Flags().StringVar(&cpTo, "provider", "", "the new provider's node name")
	changeProvider.Flags().StringVar(&cp.Node, "node", "", "the node to move (default: this node)")
	changeProvider.Flags().StringVar(&cp.Consumer, "consumer", "", "a cascaded consumer of this node to move instead of its worker")
	changeProvider.Flags().DurationVar(&cp.Timeout, "timeout", time.Minute, "the longest wait for the worker's acknowledgement or the new provider's tick")
	root.AddCommand(changeProvider)
	var to replica.TakeoverOptions
	var deadRoot, deadBranch bool
	var dead []string
	takeover := &cobra.Command{Use: "takeover OLD_NODE [--all]", Short: "put this node in OLD_NODE's place (a switchover; the root's too)", Args: cobra.ExactArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			if deadRoot && deadBranch {
				return errors.New("takeover: --dead-root or --dead-branch, not both")
			}
			to.DeadRoot, to.DeadBranch, to.Dead = deadRoot, deadBranch, dead
			return a.Takeover(cmd.Context(), args[0], to)
		})}
	takeover.Flags().BoolVar(&to.All, "all", false, "move every other subscriber of OLD_NODE here first")
	takeover.Flags().DurationVar(&to.Timeout, "timeout", time.Minute, "the longest wait for an acknowledgement or for catching up")
	takeover.Flags().BoolVar(&deadRoot, "dead-root", false, "OLD_NODE is a root that is down (failover)")
	takeover.Flags().BoolVar(&deadBranch, "dead-branch", false, "OLD_NODE is a branch that is down (failover)")
	takeover.Flags().StringSliceVar(&dead, "dead", nil, "more nodes known to be down")
	root.AddCommand(takeover)
	var dumpFile string
	resurrect := &cobra.Command{Use: "resurrect", Short: "bring an old root back as a branch after a failover (dumps the events that never left it)", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			st, err := a.Resurrect(cmd.Context(), dumpFile)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "gravestone on %s at tick %d; root %s\n%d events dumped to %s, %d deleted, %d ticks deleted\nresurrection done, worker paused (resume it when the lost events are dealt with)\n",
				st.Provider, st.Tick, st.NewRoot, st.Dumped, dumpFile, st.Deleted, st.TicksDeleted)
			return nil
		})}
	resurrect.Flags().StringVar(&dumpFile, "dump-file", replica.ResurrectFile, "where the lost events are written")
	root.AddCommand(resurrect)
	root.AddCommand(&cobra.Command{Use: "tag-dead NODE...", Short: "mark nodes dead on every live node", Args: cobra.MinimumNArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.TagDead(cmd.Context(), true, args...)
		})},
		&cobra.Command{Use: "tag-alive NODE...", Short: "mark nodes alive again on every live node", Args: cobra.MinimumNArgs(1),
			RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
				return a.TagDead(cmd.Context(), false, args...)
			})})
	var waitTimeout time.Duration
	for _, name := range []string{"wait-root", "wait-provider"} {
		c := &cobra.Command{Use: name, Short: "wait until this node's worker has passed the " + strings.TrimPrefix(name, "wait-") + "'s current tick", Args: cobra.NoArgs,
			RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
				return a.WaitUpstream(cmd.Context(), name == "wait-root", waitTimeout)
			})}
		c.Flags().DurationVar(&waitTimeout, "timeout", 0, "give up after this long (0: wait forever)")
		root.AddCommand(c)
	}
	root.AddCommand(&cobra.Command{Use: "drop-node NODE", Short: "remove a leaf node from the cascade", Args: cobra.ExactArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.DropNode(cmd.Context(), args[0])
		})})

	var ato replica.AddTableOptions
	addTable := &cobra.Command{Use: "add-table TABLE... | --all", Short: "replicate tables", Args: cobra.ArbitraryArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			if cmd.Flags().Lookup("find-copy-node").Changed {
				ato.CopyNode = "?"
			}
			_, err := a.AddTable(cmd.Context(), ato, args...)
			return err
		})}
	f := addTable.Flags()
	f.BoolVar(&ato.All, "all", false, "every table listed by missing")
	f.BoolVar(&ato.WaitSync, "wait-sync", false, "wait until the tables are in sync")
	f.StringVar(&ato.DestTable, "dest-table", "", "apply into another local table (one table only)")
	f.BoolVar(&ato.ExpectSync, "expect-sync", false, "no copy: the table already has the provider's data")
	f.BoolVar(&ato.SkipTruncate, "skip-truncate", false, "copy without emptying the table first")
	f.BoolVar(&ato.Create, "create", false, "create a missing table (columns and primary key) from the provider's")
	f.BoolVar(&ato.CreateFull, "create-full", false, "create a missing table with defaults, constraints and indexes")
	f.StringVar(&ato.TriggerFlags, "trigger-flags", "", "trigger flags (BAIUDLQJS; default AIUDL)")
	f.StringArrayVar(&ato.TriggerArgs, "trigger-arg", nil, "extra trigger argument (repeatable)")
	f.BoolVar(&ato.NoTriggers, "no-triggers", false, "register without triggers")
	f.StringVar(&ato.Handler, "handler", "", "table handler (londiste, vtable)")
	f.StringArrayVar(&ato.HandlerArgs, "handler-arg", nil, "handler argument KEY=VALUE (repeatable)")
	f.StringVar(&ato.CopyNode, "copy-node", "", "copy the data from this node instead of the provider")
	f.Bool("find-copy-node", false, "copy from the first node up from the provider that has the table")
	addTable.MarkFlagsMutuallyExclusive("copy-node", "find-copy-node")
	f.BoolVar(&ato.SkipNonExisting, "skip-non-existing", false, "skip tables missing here or on the provider")
	f.BoolVar(&ato.Force, "force", false, "accept names not in the set")
	root.AddCommand(addTable)

	root.AddCommand(&cobra.Command{Use: "remove-table TABLE...", Short: "stop replicating tables", Args: cobra.MinimumNArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.RemoveTable(cmd.Context(), args...)
		})})
	var handler string
	var handlerArgs []string
	ch := &cobra.Command{Use: "change-handler TABLE --handler=H", Short: "change a table's handler", Args: cobra.ExactArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.ChangeHandler(cmd.Context(), args[0], handler, handlerArgs)
		})}
	ch.Flags().StringVar(&handler, "handler", "", "the new handler")
	ch.Flags().StringArrayVar(&handlerArgs, "handler-arg", nil, "handler argument KEY=VALUE (repeatable)")
	root.AddCommand(ch)
	var allSeqs bool
	addSeq := &cobra.Command{Use: "add-seq SEQ... | --all", Short: "replicate sequences", Args: cobra.ArbitraryArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.AddSeq(cmd.Context(), allSeqs, args...)
		})}
	addSeq.Flags().BoolVar(&allSeqs, "all", false, "every sequence listed by missing")
	root.AddCommand(addSeq, &cobra.Command{Use: "remove-seq SEQ...", Short: "stop replicating sequences", Args: cobra.MinimumNArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.RemoveSeq(cmd.Context(), args...)
		})})

	var namesOnly bool
	tables := &cobra.Command{Use: "tables", Short: "this node's tables and their copy states", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			ts, err := a.Tables(cmd.Context())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, t := range ts {
				if !t.Local {
					continue
				}
				if namesOnly {
					fmt.Fprintln(cmd.OutOrStdout(), t.Name)
					continue
				}
				rows = append(rows, []string{t.Name, pyNone(t.MergeState), pyAttrs(t.TableAttrs)})
			}
			if !namesOnly {
				printTable(cmd.OutOrStdout(), "Tables on node", []string{"table_name", "merge_state", "table_attrs"}, rows)
			}
			return nil
		})}
	tables.Flags().BoolVar(&namesOnly, "names-only", false, "table names only")
	root.AddCommand(tables)
	root.AddCommand(&cobra.Command{Use: "seqs", Short: "the set's sequences", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			ss, err := a.Seqs(cmd.Context())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, s := range ss {
				rows = append(rows, []string{s.Name, pyBool(s.Local), fmt.Sprint(s.LastValue)})
			}
			printTable(cmd.OutOrStdout(), "Sequences on node", []string{"seq_name", "local", "last_value"}, rows)
			return nil
		})})
	root.AddCommand(&cobra.Command{Use: "missing", Short: "tables and sequences that could be added", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			ms, err := a.Missing(cmd.Context())
			if err != nil {
				return err
			}
			var rows [][]string
			for _, m := range ms {
				rows = append(rows, []string{m.Kind, m.Name})
			}
			printTable(cmd.OutOrStdout(), "Missing objects on node", []string{"obj_kind", "obj_name"}, rows)
			return nil
		})})
	var rsCopyNode string
	var rsFind bool
	resync := &cobra.Command{Use: "resync TABLE... [--copy-node=NODE | --find-copy-node]", Short: "copy tables again", Args: cobra.MinimumNArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			if rsFind {
				rsCopyNode = "?"
			}
			return a.ResyncFrom(cmd.Context(), rsCopyNode, args...)
		})}
	resync.Flags().StringVar(&rsCopyNode, "copy-node", "", "copy the data from this node instead of the provider")
	resync.Flags().BoolVar(&rsFind, "find-copy-node", false, "copy from the first node up from the provider that has the table")
	resync.MarkFlagsMutuallyExclusive("copy-node", "find-copy-node")
	root.AddCommand(resync)
	var syncTimeout time.Duration
	waitSync := &cobra.Command{Use: "wait-sync", Short: "wait until every table is in sync", Args: cobra.NoArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, _ []string) error {
			// on a terminal, a progress line rewritten in place
			f, ok := cmd.ErrOrStderr().(*os.File)
			if !ok || !isTerminal(f) {
				return a.WaitSync(cmd.Context(), syncTimeout)
			}
			defer fmt.Fprintln(f)
			return a.WaitSyncProgress(cmd.Context(), syncTimeout, func(pending []string, copies []replica.CopyProgress) {
				line := fmt.Sprintf("waiting for %d table(s)", len(pending))
				for _, c := range copies {
					line += fmt.Sprintf(" | %s: %s", c.Table, c)
				}
				if len(copies) == 0 && len(pending) > 0 {
					line += ": " + strings.Join(pending, ", ")
				}
				fmt.Fprintf(f, "\r\033[K%s", line)
			})
		})}
	waitSync.Flags().DurationVar(&syncTimeout, "timeout", 0, "give up after this long (0: wait forever)")
	root.AddCommand(waitSync)
	root.AddCommand(&cobra.Command{Use: "execute FILE...", Short: "run SQL files on the root and, at the same queue position, on every node", Args: cobra.MinimumNArgs(1),
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			return a.Execute(cmd.Context(), args...)
		})})
	root.AddCommand(&cobra.Command{Use: "show-handlers [NAME...]", Short: "the table handlers pgqgo has", Args: cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprint(cmd.OutOrStdout(), replica.HandlerHelp)
			return nil
		}})

	var cmpOpts replica.CompareOptions
	var cmpJSON bool
	compare := &cobra.Command{Use: "compare [TABLE...]", Short: "compare row counts and checksums with the provider", Args: cobra.ArbitraryArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			res, err := a.Compare(cmd.Context(), cmpOpts, args...)
			out := cmd.OutOrStdout()
			bad := 0
			for _, r := range res {
				if !r.Equal {
					bad++
				}
				if !cmpJSON {
					fmt.Fprintf(out, "%s: srcdb: %s\n%s: dstdb: %s\n", r.Table, r.Source, r.Table, r.Target)
					if !r.Equal {
						fmt.Fprintf(out, "%s: Results do not match!\n", r.Table)
					}
				}
			}
			if cmpJSON {
				if res == nil {
					res = []replica.CompareResult{}
				}
				if err := json.NewEncoder(out).Encode(res); err != nil {
					return err
				}
			}
			if err != nil {
				return err
			}
			if bad > 0 {
				return withCode(min(bad, 125), "compare: %d table(s) differ", bad)
			}
			return nil
		})}
	compare.Flags().BoolVar(&cmpOpts.CountOnly, "count-only", false, "count rows only, no checksum")
	compare.Flags().BoolVar(&cmpOpts.Force, "force", false, "compare even if this node does not catch up in time")
	compare.Flags().BoolVar(&cmpJSON, "json", false, "JSON output")
	root.AddCommand(compare)

	var rep replica.RepairOptions
	var repJSON bool
	repair := &cobra.Command{Use: "repair [TABLE...]", Short: "find and fix rows that differ from the provider", Args: cobra.ArbitraryArgs,
		RunE: admin(func(cmd *cobra.Command, a *replica.Admin, args []string) error {
			res, err := a.Repair(cmd.Context(), rep, args...)
			out := cmd.OutOrStdout()
			if repJSON {
				if res == nil {
					res = []replica.RepairResult{}
				}
				if jerr := json.NewEncoder(out).Encode(res); jerr != nil {
					return jerr
				}
			} else {
				for _, r := range res {
					fmt.Fprintln(out, r.Line())
				}
			}
			return err
		})}
	repair.Flags().BoolVar(&rep.Apply, "apply", false, "apply the fixes here (otherwise written to fix.TABLE.sql)")
	repair.Flags().BoolVar(&rep.Force, "force", false, "repair even if this node does not catch up in time")
	repair.Flags().BoolVar(&repJSON, "json", false, "JSON output")
	repair.Flags().String("sort-bufsize", "", "accepted for londiste3 compatibility (nothing is sorted on disk)")
	root.AddCommand(repair)

	root.AddCommand(workerCmd(env))
	return root
}

func workerCmd(env *londisteEnv) *cobra.Command {
	var daemonize, stop, kill, reload, rewind, reset bool
	c := &cobra.Command{Use: "worker [-d | -s | -k | -r | --rewind | --reset]", Short: "the replication daemon", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := env.config()
			if err != nil {
				return err
			}
			switch {
			case stop:
				return signalRunning(cfg.PidFile, syscall.SIGINT)
			case kill:
				return signalRunning(cfg.PidFile, syscall.SIGTERM)
			case reload:
				return signalRunning(cfg.PidFile, syscall.SIGHUP)
			case rewind || reset:
				log, closeLog, err := env.logger(cfg, cmd.ErrOrStderr())
				if err != nil {
					return err
				}
				defer closeLog()
				w := replica.NewWorker(cfg, log, nil)
				if rewind {
					return w.Rewind(cmd.Context())
				}
				return w.Reset(cmd.Context())
			}
			if daemonize && os.Getenv(daemonEnv) == "" {
				if cfg.PidFile == "" {
					return withCode(exitUsage, "londiste worker: -d needs pidfile in the config")
				}
				return startDaemon(cfg.PidFile)
			}
			if os.Getenv(daemonEnv) != "" {
				env.quiet = true
			}
			log, closeLog, err := env.logger(cfg, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer closeLog()
			if cfg.PidFile != "" {
				if err := writePidFile(cfg.PidFile); err != nil {
					return err
				}
				defer os.Remove(cfg.PidFile)
			}
			reg := prometheus.NewRegistry()
			m := replica.NewMetrics(reg)
			if cfg.MetricsAddr != "" {
				srv := &http.Server{Addr: cfg.MetricsAddr, Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
				go func() {
					if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
						log.Error("metrics", "err", err)
					}
				}()
				defer srv.Close()
			}
			w := replica.NewWorker(cfg, log, m)
			// SIGHUP (worker -r): the ini read again, as londiste3 does
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			go func() {
				for range hup {
					next, err := env.config()
					if err == nil {
						err = w.Reload(next)
					}
					if err != nil {
						log.Error("SIGHUP: configuration not reloaded, the running one kept", "err", err)
						continue
					}
					log.Info("SIGHUP: configuration reloaded", "file", env.path)
				}
			}()
			return w.Run(cmd.Context())
		}}
	f := c.Flags()
	f.BoolVarP(&daemonize, "daemon", "d", false, "run in the background (needs pidfile)")
	f.BoolVarP(&stop, "stop", "s", false, "stop the running worker (SIGINT)")
	f.BoolVarP(&kill, "kill", "k", false, "kill the running worker (SIGTERM)")
	f.BoolVarP(&reload, "reload", "r", false, "signal the running worker (SIGHUP)")
	f.BoolVar(&rewind, "rewind", false, "set the position on the provider to this node's completed tick, and exit")
	f.BoolVar(&reset, "reset", false, "set this node's completed tick to the position on the provider, and exit")
	c.MarkFlagsMutuallyExclusive("daemon", "stop", "kill", "reload", "rewind", "reset")
	return c
}

func nodeName(cmd *cobra.Command, a *replica.Admin) string {
	n, err := a.Node(cmd.Context())
	if err != nil {
		return "?"
	}
	return n.Name
}

// printTable prints rows as londiste3 (skytools display_table) does:
// columns at least 15 wide, two spaces apart, a dashed rule, a blank line.
func printTable(w io.Writer, desc string, fields []string, rows [][]string) {
	if len(rows) == 0 {
		return
	}
	widths := make([]int, len(fields))
	for i := range widths {
		widths[i] = 15
	}
	for _, r := range rows {
		for i, v := range r {
			widths[i] = max(widths[i], len(v))
		}
	}
	line := func(vals []string) {
		var b strings.Builder
		for i, v := range vals {
			if i < len(vals)-1 {
				fmt.Fprintf(&b, "%-*s", widths[i]+2, v)
			} else {
				b.WriteString(v)
			}
		}
		fmt.Fprintln(w, b.String())
	}
	if desc != "" {
		fmt.Fprintln(w, desc)
	}
	line(fields)
	dashes := make([]string, len(fields))
	for i := range fields {
		dashes[i] = strings.Repeat("-", widths[i])
	}
	line(dashes)
	for _, r := range rows {
		line(r)
	}
	fmt.Fprint(w, "\n\n")
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func pyNone(s string) string {
	if s == "" {
		return "None"
	}
	return s
}

// pyAttrs shows table_attrs as londiste3 does: the decoded dict.
func pyAttrs(s string) string {
	if s == "" {
		return ""
	}
	var parts []string
	for _, kv := range strings.Split(s, "&") {
		k, v, ok := strings.Cut(kv, "=")
		if ok {
			parts = append(parts, fmt.Sprintf("'%s': '%s'", unescape(k), unescape(v)))
		} else {
			parts = append(parts, fmt.Sprintf("'%s': None", unescape(k)))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func unescape(s string) string {
	v, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return v
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
