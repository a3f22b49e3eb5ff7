// Package pgcluster starts and stops throwaway PostgreSQL clusters: initdb into a
// temporary directory, postgres on a private unix socket and a free TCP port on
// loopback. When the caller is root the server runs as the "postgres" OS user,
// because PostgreSQL refuses to run as root. The test harness and `pgqgo demo`
// both use it.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Options tune a new cluster. The zero value is a sensible default.
type Options struct {
	// BinDir holds initdb and postgres; found automatically when empty.
	BinDir string
	// Settings are extra postgresql.conf settings (name -> value).
	Settings map[string]string
	// Durable keeps PostgreSQL's production settings (fsync,
	// synchronous_commit, full_page_writes on) instead of turning them off
	// for speed: for benchmarks and demos that must show commit costs.
	Durable bool
	// KeepDir leaves the data directory behind after Stop (for debugging).
	KeepDir bool
	// Detached starts the server in a session of its own, so that it outlives
	// this process (pgqgo demo --keep). By default the server is stopped when
	// the process that started it dies.
	Detached bool
	// NextXID, when non-zero, is the 64-bit transaction id (epoch<<32 | xid)
	// the new cluster starts at, set with pg_resetwal: tests of txid epochs
	// and of 32-bit xid wraparound.
	NextXID uint64
}

// DurableSettings are the settings a throwaway cluster turns off for speed
// unless Options.Durable is set.
var DurableSettings = []string{"fsync", "synchronous_commit", "full_page_writes"}

// Cluster is a running throwaway PostgreSQL server.
type Cluster struct {
	Dir       string // root temp dir: data/, socket, log
	DataDir   string
	SocketDir string
	Port      int
	BinDir    string
	User      string // superuser name

	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	keepDir bool
	who     runAs
}

// FindBinDir locates PostgreSQL server binaries: pg_config --bindir,
// then the newest /usr/lib/postgresql/*/bin, then PATH.
func FindBinDir() (string, error) {
	hasServer := func(dir string) bool {
		for _, b := range []string{"initdb", "postgres"} {
			if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServer(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if hasServer(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); hasServer(d) {
			return d, nil
		}
	}
	return "", errors.New("pgcluster: PostgreSQL server binaries (initdb, postgres) not found in pg_config --bindir, /usr/lib/postgresql/*/bin or PATH")
}

func pgMajor(binDir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	return v
}

// runAs describes the OS identity the server runs under.
type runAs struct {
	cred *syscall.Credential
	uid  int
	gid  int
}

func serverIdentity() (runAs, error) {
	if os.Geteuid() != 0 {
		return runAs{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return runAs{}, fmt.Errorf("pgcluster: running as root needs the 'postgres' OS user to run the server: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return runAs{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

func (r runAs) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGINT}
	if r.cred != nil {
		cmd.SysProcAttr.Credential = r.cred
	}
	return cmd
}

func (r runAs) chown(path string) error {
	if r.uid < 0 {
		return nil
	}
	return os.Chown(path, r.uid, r.gid)
}

// Start creates and starts a new cluster. Stop it with Stop.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	bin := opts.BinDir
	if bin == "" {
		var err error
		if bin, err = FindBinDir(); err != nil {
			return nil, err
		}
	}
	who, err := serverIdentity()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "pgqgo-cluster-")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: temp dir: %w", err)
	}
	c := &Cluster{Dir: dir, DataDir: filepath.Join(dir, "data"), SocketDir: dir, BinDir: bin, User: "postgres", keepDir: opts.KeepDir, done: make(chan struct{}), who: who}
	fail := func(err error) (*Cluster, error) {
		if !opts.KeepDir {
			os.RemoveAll(dir)
		}
		return nil, err
	}
	if err := who.chown(dir); err != nil {
		return fail(fmt.Errorf("pgcluster: chown %s: %w", dir, err))
	}
	initdb := who.command(filepath.Join(bin, "initdb"), "-D", c.DataDir, "-U", c.User, "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgcluster: initdb: %w\n%s", err, out))
	}
	if opts.NextXID != 0 {
		if err := setNextXID(who, bin, c.DataDir, opts.NextXID); err != nil {
			return fail(err)
		}
	}
	if c.Port, err = freePort(); err != nil {
		return fail(err)
	}
	settings := map[string]string{
		"listen_addresses":          "127.0.0.1",
		"port":                      strconv.Itoa(c.Port),
		"unix_socket_directories":   dir,
		"fsync":                     "off",
		"synchronous_commit":        "off",
		"full_page_writes":          "off",
		"max_connections":           "300",
		"shared_buffers":            "128MB",
		"max_prepared_transactions": "10",
		"log_min_messages":          "warning",
		"logging_collector":         "off",
	}
	if opts.Durable {
		for _, k := range DurableSettings {
			settings[k] = "on"
		}
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	var conf strings.Builder
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	confPath := filepath.Join(c.DataDir, "postgresql.auto.conf")
	if err := os.WriteFile(confPath, []byte(conf.String()), 0o600); err != nil {
		return fail(fmt.Errorf("pgcluster: write config: %w", err))
	}
	if err := who.chown(confPath); err != nil {
		return fail(err)
	}
	logPath := filepath.Join(dir, "postgres.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fail(err)
	}
	if err := who.chown(logPath); err != nil {
		return fail(err)
	}
	c.cmd = who.command(filepath.Join(bin, "postgres"), "-D", c.DataDir)
	if opts.Detached {
		c.cmd.SysProcAttr.Pdeathsig = 0
		c.cmd.SysProcAttr.Setpgid = false
		c.cmd.SysProcAttr.Setsid = true
	}
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return fail(fmt.Errorf("pgcluster: start postgres: %w", err))
	}
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(c.done)
	}()
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.Stop()
		log, _ := os.ReadFile(logPath)
		return fail(fmt.Errorf("%w\n%s", err, log))
	}
	return c, nil
}

// setNextXID moves a stopped cluster's next transaction id, creating the
// commit-log segment that the new xid needs.
func setNextXID(who runAs, bin, dataDir string, next uint64) error {
	// Rows written by initdb must be frozen, or they would look like they come
	// from the future once the xid counter jumps ahead.
	for _, db := range []string{"template1", "postgres"} {
		single := who.command(filepath.Join(bin, "postgres"), "--single", "-D", dataDir, db)
		single.Stdin = strings.NewReader("VACUUM FREEZE;\n")
		if out, err := single.CombinedOutput(); err != nil {
			return fmt.Errorf("pgcluster: freeze %s: %w\n%s", db, err, out)
		}
	}
	epoch, xid := next>>32, uint32(next)
	if xid < 3 {
		xid = 3 // xids 0..2 are reserved
	}
	const xidsPerSegment = 32 * 8192 * 4 // SLRU pages per segment * xacts per page
	seg := filepath.Join(dataDir, "pg_xact", fmt.Sprintf("%04X", xid/xidsPerSegment))
	if _, err := os.Stat(seg); os.IsNotExist(err) {
		if err := os.WriteFile(seg, make([]byte, 32*8192), 0o600); err != nil {
			return fmt.Errorf("pgcluster: create %s: %w", seg, err)
		}
		if err := who.chown(seg); err != nil {
			return err
		}
	}
	cmd := who.command(filepath.Join(bin, "pg_resetwal"), "-e", strconv.FormatUint(epoch, 10),
		"-x", strconv.FormatUint(uint64(xid), 10), "-D", dataDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgcluster: pg_resetwal: %w\n%s", err, out)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgcluster: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := pgconn.Connect(cctx, c.DSN("postgres"))
		cancel()
		if err == nil {
			conn.Close(ctx)
			return nil
		}
		select {
		case <-c.done:
			return fmt.Errorf("pgcluster: postgres exited during start-up: %v", c.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgcluster: postgres not ready after %s: %w", limit, err)
		}
	}
}

// DSN returns a libpq key=value connection string for database dbname.
func (c *Cluster) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", c.SocketDir, c.Port, c.User, QuoteDSNValue(dbname))
}

// QuoteDSNValue quotes a value for a libpq key=value connection string.
func QuoteDSNValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " '\\\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Restart stops the server (fast shutdown) and starts it again on the same
// port and data directory: for tests of reconnect behaviour.
func (c *Cluster) Restart(ctx context.Context) error {
	if err := c.shutdown(); err != nil {
		return err
	}
	return c.start(ctx)
}

// Up starts a server stopped with Shutdown again, on the same port and data
// directory (Shutdown, then Up: the server down for a while).
func (c *Cluster) Up(ctx context.Context) error { return c.start(ctx) }

// Crash stops the server with an immediate shutdown (every backend killed at
// once, no checkpoint: the next start runs crash recovery, as after a power
// cut of the server alone) and starts it again.
func (c *Cluster) Crash(ctx context.Context) error {
	if err := c.Kill(); err != nil {
		return err
	}
	return c.start(ctx)
}

// Kill stops the server with an immediate shutdown (pg_ctl -m immediate:
// every backend killed at once, no checkpoint) and leaves it down; Up
// starts it again, with crash recovery.
func (c *Cluster) Kill() error {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-c.done:
		case <-time.After(30 * time.Second):
			return errors.New("pgcluster: postgres did not stop on SIGQUIT")
		}
	}
	return nil
}

// start starts the server of a stopped cluster again.
func (c *Cluster) start(ctx context.Context) error {
	who, err := serverIdentity()
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(c.Dir, "postgres.log"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	c.done = make(chan struct{})
	c.cmd = who.command(filepath.Join(c.BinDir, "postgres"), "-D", c.DataDir)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("pgcluster: restart postgres: %w", err)
	}
	done := c.done
	go func() {
		c.waitErr = c.cmd.Wait()
		logFile.Close()
		close(done)
	}()
	return c.waitReady(ctx, 60*time.Second)
}

func (c *Cluster) shutdown() error {
	if c.cmd == nil || c.cmd.Process == nil {
		return nil
	}
	select {
	case <-c.done:
		return nil
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
	select {
	case <-c.done:
		return nil
	case <-time.After(30 * time.Second):
	}
	_ = c.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
	select {
	case <-c.done:
		return nil
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
		return errors.New("pgcluster: postgres had to be killed")
	}
}

// Pid is the server's process id.
func (c *Cluster) Pid() int {
	if c.cmd == nil || c.cmd.Process == nil {
		return 0
	}
	return c.cmd.Process.Pid
}

// Shutdown stops the server and keeps its directory, for SingleUser.
func (c *Cluster) Shutdown() error { return c.shutdown() }

// SingleUser returns a command that runs `postgres --single` on the (shut
// down) cluster's database db, as the server's OS user, optionally under a
// wrapper program such as valgrind: wrapper[0] is run with wrapper[1:] and
// then the postgres command line. Statements go to its standard input.
func (c *Cluster) SingleUser(db string, wrapper ...string) *exec.Cmd {
	args := []string{filepath.Join(c.BinDir, "postgres"), "--single", "-D", c.DataDir, "-c", "fsync=off", db}
	if len(wrapper) > 0 {
		return c.who.command(wrapper[0], append(wrapper[1:], args...)...)
	}
	return c.who.command(args[0], args[1:]...)
}

// Stop shuts the server down and removes its directory.
func (c *Cluster) Stop() error {
	err := c.shutdown()
	if !c.keepDir {
		if rmErr := os.RemoveAll(c.Dir); err == nil {
			err = rmErr
		}
	}
	return err
}
