package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/ticker"
)

const daemonEnv = "PGQGO_TICKER_DAEMONIZED"

func tickerCmd() *cobra.Command {
	var daemonize, stop, kill, reload, quiet, verbose, version, sample bool
	cmd := &cobra.Command{
		Use:   "ticker [flags] CONFIG.ini",
		Short: "Tick and maintain every PgQ database of a cluster (drop-in for pgqd)",
		Long: "Reads pgqd's ini file unchanged ([pgqd] section) and does pgqd's work: ticks every\n" +
			"ticker_period, retry every retry_period, maintenance every maint_period, for every database\n" +
			"with a pgq schema (pgqgo's or Skytools'). On pgqgo schemas it also ticks queues as soon as\n" +
			"they have new events and sends NOTIFY pgq_tick (payload: queue name). See docs/ticker.md.\n" +
			"SIGHUP reloads the config; SIGINT and SIGTERM stop cleanly.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 1 {
				return withCode(exitUsage, "%s takes one config file (got %d arguments); see %s --help", cmd.CommandPath(), len(args), cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch {
			case version:
				fmt.Fprintln(out, ticker.Version)
				return nil
			case sample:
				fmt.Fprint(out, ticker.SampleINI)
				return nil
			}
			if len(args) != 1 {
				return withCode(exitUsage, "ticker: config file argument required (see --ini for a sample)")
			}
			if cmd.Flags().Changed("db") {
				return withCode(exitUsage, "ticker: --db is not used: the daemon reaches its databases through base_connstr and database_list in %s", args[0])
			}
			cfg, err := ticker.LoadConfig(args[0])
			if err != nil {
				return &exitErr{code: exitUsage, err: err} // a bad or missing config: nothing started
			}
			switch {
			case stop:
				return signalRunning(cfg.PidFile, syscall.SIGINT)
			case kill:
				return signalRunning(cfg.PidFile, syscall.SIGTERM)
			case reload:
				return signalRunning(cfg.PidFile, syscall.SIGHUP)
			}
			if daemonize && os.Getenv(daemonEnv) == "" {
				if cfg.PidFile == "" {
					return errors.New("ticker: -d needs pidfile in the config")
				}
				return startDaemon(cfg.PidFile)
			}
			return runTicker(cmd, args[0], cfg, quiet || os.Getenv(daemonEnv) != "", verbose)
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&daemonize, "daemon", "d", false, "run in the background (needs pidfile)")
	f.BoolVarP(&stop, "stop", "s", false, "stop the running ticker (SIGINT)")
	f.BoolVarP(&kill, "kill", "k", false, "kill the running ticker (SIGTERM)")
	f.BoolVarP(&reload, "reload", "r", false, "make the running ticker reload its config (SIGHUP)")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not log to stdout")
	f.BoolVarP(&verbose, "verbose", "v", false, "verbose log")
	f.BoolVarP(&version, "version", "V", false, "print version")
	f.BoolVar(&sample, "ini", false, "print a sample config")
	return cmd
}

func runTicker(cmd *cobra.Command, path string, cfg ticker.Config, quiet, verbose bool) error {
	// The daemon waits on the network almost all the time: one scheduler
	// thread serves every database with the fewest thread wake-ups (measured:
	// a third less CPU than two). GOMAXPROCS in the environment overrides.
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(1)
	}
	log, closeLog, err := tickerLogger(cfg, cmd.OutOrStdout(), quiet, verbose)
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
	d := ticker.New(cfg, log)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			newCfg, err := ticker.LoadConfig(path)
			if err != nil {
				log.Error("reload failed; keeping the running config", "err", err)
				continue
			}
			d.Reload(newCfg)
		}
	}()
	return d.Run(cmd.Context())
}

func tickerLogger(cfg ticker.Config, stdout io.Writer, quiet, verbose bool) (*slog.Logger, func(), error) {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if verbose {
		opts.Level = slog.LevelDebug
	}
	newHandler := func(w io.Writer) slog.Handler {
		if cfg.LogFormat == "json" {
			return slog.NewJSONHandler(w, opts)
		}
		return slog.NewTextHandler(w, opts)
	}
	var handlers []slog.Handler
	closers := []func(){}
	if !quiet {
		handlers = append(handlers, newHandler(stdout))
	}
	if cfg.LogFile != "" {
		f, err := os.OpenFile(cfg.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, nil, fmt.Errorf("logfile: %w", err)
		}
		handlers = append(handlers, newHandler(f))
		closers = append(closers, func() { f.Close() })
	}
	if cfg.Syslog {
		// like pgqd, syslog is best effort: no syslog daemon is not an error
		if w, err := syslog.New(syslog.LOG_DAEMON|syslog.LOG_INFO, cfg.SyslogIdent); err == nil {
			handlers = append(handlers, slog.NewTextHandler(w, opts))
			closers = append(closers, func() { w.Close() })
		}
	}
	log := slog.New(slog.NewMultiHandler(handlers...))
	return log, func() {
		for _, c := range closers {
			c()
		}
	}, nil
}

// writePidFile refuses to start when the pidfile names a live process and
// replaces a stale one.
func writePidFile(path string) error {
	if pid, err := readPid(path); err == nil {
		if pid != os.Getpid() && alive(pid) {
			return fmt.Errorf("already running with pid %d (pidfile %s)", pid, path)
		}
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		return fmt.Errorf("pidfile: %w", err)
	}
	return os.Rename(tmp, path)
}

// alive reports whether a process exists and is not a zombie (a killed
// daemon nobody reaped still answers kill -0).
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill -0
	}
	// pid (comm) state ...: comm may hold spaces and parentheses
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z'
	}
	return true
}

func readPid(path string) (int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("pidfile %s: no pid in it", path)
	}
	return pid, nil
}

func signalRunning(pidfile string, sig syscall.Signal) error {
	if pidfile == "" {
		return errors.New("no pidfile in the config")
	}
	pid, err := readPid(pidfile)
	if err != nil {
		return fmt.Errorf("not running? %w", err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal pid %d: %w", pid, err)
	}
	return nil
}

// startDaemon re-executes the command in a new session, detached from the
// terminal, and returns once the child has written its pidfile.
func startDaemon(pidfile string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if pid, err := readPid(pidfile); err == nil && alive(pid) {
		return fmt.Errorf("already running with pid %d (pidfile %s)", pid, pidfile)
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer devnull.Close()
	child := exec.Command(self, os.Args[1:]...)
	child.Env = append(os.Environ(), daemonEnv+"=1")
	child.Stdin, child.Stdout, child.Stderr = devnull, devnull, devnull
	child.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := child.Start(); err != nil {
		return fmt.Errorf("daemonize: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	deadline := time.After(10 * time.Second)
	for {
		if pid, err := readPid(pidfile); err == nil && pid == child.Process.Pid {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("daemon exited at start-up (see its logfile): %v", err)
		case <-deadline:
			return errors.New("daemon did not write its pidfile within 10s")
		case <-time.After(20 * time.Millisecond):
		}
	}
}
