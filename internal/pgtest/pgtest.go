// Package pgtest gives every test in the project a fresh database on a real
// PostgreSQL server. One throwaway cluster is started per test process (see
// pgcluster) unless PGQGO_TEST_DSN points at an existing server. Databases are
// cloned from templates that already hold the schema under test, so a test's
// set-up is one line and costs one CREATE DATABASE.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/pgqgo/pgqgo/internal/pgcluster"
	"github.com/pgqgo/pgqgo/schema"
)

// Template selects what a new test database already contains.
type Template int

const (
	// Empty is a database with nothing installed.
	Empty Template = iota
	// PgqGo has pgqgo's pgq schema installed.
	PgqGo
	// Skytools has Skytools' PgQ C extension installed (CREATE EXTENSION pgq).
	Skytools
)

func (t Template) String() string {
	return [...]string{"empty", "pgqgo", "skytools"}[t]
}

var (
	mu        sync.Mutex
	cluster   *pgcluster.Cluster
	serverDSN string // DSN of the maintenance database on the server
	startErr  error
	started   bool
	templates = map[Template]string{}
	counter   atomic.Int64
)

// Main runs the package's tests and stops the cluster afterwards. Call it from
// TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Shutdown()
	os.Exit(code)
}

// Shutdown stops the cluster this process started, if any.
func Shutdown() {
	mu.Lock()
	defer mu.Unlock()
	if cluster != nil {
		_ = cluster.Stop()
		cluster = nil
	} else if serverDSN != "" {
		dropTemplates()
	}
}

func ensureServer(ctx context.Context) error {
	if started {
		return startErr
	}
	started = true
	if dsn := os.Getenv("PGQGO_TEST_DSN"); dsn != "" {
		serverDSN = dsn
		return nil
	}
	// PGQGO_TEST_DURABLE=1: the production settings (fsync, synchronous_commit,
	// full_page_writes on) for the whole run, not just the benchmarks that ask
	cluster, startErr = pgcluster.Start(ctx, pgcluster.Options{Durable: os.Getenv("PGQGO_TEST_DURABLE") == "1"})
	if startErr == nil {
		serverDSN = cluster.DSN("postgres")
	}
	return startErr
}

// Cluster returns the throwaway cluster, starting it if needed. It fails the
// test when PGQGO_TEST_DSN is in use (no cluster to control then).
func Cluster(t testing.TB) *pgcluster.Cluster {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if err := ensureServer(context.Background()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if cluster == nil {
		t.Fatalf("pgtest: this test controls the server process and cannot run against PGQGO_TEST_DSN")
	}
	return cluster
}

// OwnCluster starts a cluster for this test alone (for what is cluster-wide:
// roles, the list of databases, the server going down), stopped and removed
// when the test ends.
func OwnCluster(t testing.TB, opts pgcluster.Options) *pgcluster.Cluster {
	t.Helper()
	cl, err := pgcluster.Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("pgtest: own cluster: %v", err)
	}
	t.Cleanup(func() { cl.Stop() })
	return cl
}

// ServerDSN returns a DSN for the server's maintenance database.
func ServerDSN(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if err := ensureServer(context.Background()); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	return serverDSN
}

// DSNFor returns a DSN for database name on the test server.
func DSNFor(t testing.TB, name string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(ServerDSN(t))
	if err != nil {
		t.Fatalf("pgtest: parse DSN: %v", err)
	}
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", pgcluster.QuoteDSNValue(cfg.Host), cfg.Port, pgcluster.QuoteDSNValue(cfg.User), pgcluster.QuoteDSNValue(name))
	if cfg.Password != "" {
		dsn += " password=" + pgcluster.QuoteDSNValue(cfg.Password)
	}
	if cfg.TLSConfig == nil {
		dsn += " sslmode=disable"
	}
	return dsn
}

func adminExec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, serverDSN)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func templateFor(ctx context.Context, tpl Template) (string, error) {
	if name, ok := templates[tpl]; ok {
		return name, nil
	}
	name := fmt.Sprintf("pgqgo_tpl_%s_%d", tpl, os.Getpid())
	_ = adminExec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE false")
	_ = adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	if err := adminExec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("create template %s: %w", name, err)
	}
	cfg, err := pgx.ParseConfig(serverDSN)
	if err != nil {
		return "", err
	}
	cfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	switch tpl {
	case PgqGo:
		if _, err := schema.Install(ctx, conn, schema.InstallOptions{}); err != nil {
			return "", fmt.Errorf("install pgqgo schema into template: %w", err)
		}
	case Skytools:
		if _, err := conn.Exec(ctx, "CREATE EXTENSION pgq"); err != nil {
			return "", fmt.Errorf("CREATE EXTENSION pgq (Skytools' C extension; run scripts/install-deps.sh): %w", err)
		}
	}
	// marked as a template, so tools that scan the cluster (the ticker daemon)
	// leave it alone and cloning never finds it in use
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE true"); err != nil {
		return "", err
	}
	templates[tpl] = name
	return name, nil
}

func dropTemplates() {
	ctx := context.Background()
	for _, name := range templates {
		_ = adminExec(ctx, "ALTER DATABASE "+pgx.Identifier{name}.Sanitize()+" IS_TEMPLATE false")
		_ = adminExec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize())
	}
}

// NewDB creates a fresh database cloned from tpl and returns its DSN. It is
// dropped when the test ends (only needed for a shared PGQGO_TEST_DSN server).
func NewDB(t testing.TB, tpl Template) string {
	t.Helper()
	name, err := createDB(tpl)
	if err != nil {
		t.Fatalf("pgtest: new %s database: %v", tpl, err)
	}
	if cluster == nil {
		t.Cleanup(func() {
			_ = adminExec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
		})
	}
	return DSNFor(t, name)
}

// NewDBOutsideTest is NewDB for code that has no testing.TB, such as godoc
// examples. The database lives as long as the test cluster.
func NewDBOutsideTest(tpl Template) (string, error) {
	name, err := createDB(tpl)
	if err != nil {
		return "", err
	}
	cfg, err := pgx.ParseConfig(serverDSN)
	if err != nil {
		return "", err
	}
	cfg.Database = name
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", pgcluster.QuoteDSNValue(cfg.Host), cfg.Port,
		pgcluster.QuoteDSNValue(cfg.User), pgcluster.QuoteDSNValue(name)), nil
}

func createDB(tpl Template) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	mu.Lock()
	defer mu.Unlock()
	err := ensureServer(ctx)
	var tplName string
	if err == nil {
		tplName, err = templateFor(ctx, tpl)
	}
	name := fmt.Sprintf("t%d_%d", os.Getpid(), counter.Add(1))
	if err == nil {
		err = adminExec(ctx, fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", pgx.Identifier{name}.Sanitize(), pgx.Identifier{tplName}.Sanitize()))
	}
	return name, err
}

// Conn opens a connection closed at the end of the test.
func Conn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatalf("pgtest: connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Pool opens a pool closed at the end of the test.
func Pool(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("pgtest: pool: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// Exec runs sql on c and fails the test on error.
func Exec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// Scalar runs a query returning one value and fails the test on error.
func Scalar[T any](t testing.TB, c *pgx.Conn, sql string, args ...any) T {
	t.Helper()
	var v T
	if err := c.QueryRow(context.Background(), sql, args...).Scan(&v); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return v
}

// Column runs a query returning one column and fails the test on error.
func Column[T any](t testing.TB, c *pgx.Conn, sql string, args ...any) []T {
	t.Helper()
	rows, err := c.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[T])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// EventuallyProgressing waits for cond like Eventually, for as long as
// progress (a number that grows while the work goes on, such as a
// worker's completed tick) keeps growing: it fails after quiet without
// growth, or after most in all. For waits on catching up, whose length
// depends on how busy the machine is, not on correctness.
func EventuallyProgressing(t testing.TB, quiet, most time.Duration, what string, progress func() int64, cond func() bool) {
	t.Helper()
	start := time.Now()
	last, lastAt := progress(), start
	for !cond() {
		if p := progress(); p > last {
			last, lastAt = p, time.Now()
		}
		switch {
		case time.Since(lastAt) > quiet:
			t.Fatalf("no progress for %s (at %d): %s", quiet, last, what)
		case time.Since(start) > most:
			t.Fatalf("not within %s, though progressing (at %d): %s", most, last, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Eventually polls cond until it holds, failing the test after within.
func Eventually(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
