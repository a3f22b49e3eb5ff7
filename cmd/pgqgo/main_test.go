package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/schema"
)

// TestMain doubles as the pgqgo binary: with PGQGO_TEST_RUN_MAIN=1 the test
// executable runs main(), so tests can start real pgqgo processes. With
// PGQGO_TEST_CPUPROFILE=DIR each such process that ends by returning from
// main (a stop by SIGINT) leaves its CPU profile in DIR/pgqgo-<pid>.prof.
func TestMain(m *testing.M) {
	if os.Getenv("PGQGO_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"pgqgo"}, os.Args[1:]...)
		if dir := os.Getenv("PGQGO_TEST_CPUPROFILE"); dir != "" {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("pgqgo-%d.prof", os.Getpid())))
			if err == nil && pprof.StartCPUProfile(f) == nil {
				defer f.Close()
				defer pprof.StopCPUProfile()
			}
		}
		main()
		return
	}
	pgtest.Main(m)
}

func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	cmd := rootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestInstallAndVersion(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.Empty)
	out, err := runCLI(t, "version", "--db", dsn)
	if err != nil || !strings.Contains(out, "no pgq schema installed") {
		t.Fatalf("version before install: %v\n%s", err, out)
	}
	out, err = runCLI(t, "install", "--db", dsn, "--dry-run")
	if err != nil || !strings.Contains(out, "would:") || !strings.Contains(out, "0001_base") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = runCLI(t, "install", "--db", dsn)
	if err != nil || !strings.Contains(out, "installed pgqgo "+schema.Release) {
		t.Fatalf("install: %v\n%s", err, out)
	}
	out, err = runCLI(t, "install", "--db", dsn)
	if err != nil || !strings.Contains(out, "nothing to do") {
		t.Fatalf("second install: %v\n%s", err, out)
	}
	out, err = runCLI(t, "version", "--db", dsn)
	if err != nil || !strings.Contains(out, "pgqgo binary: "+schema.Release) ||
		!strings.Contains(out, fmt.Sprintf("database: pgqgo %s (migration %d, PgQ API 3.5)", schema.Release, len(schema.Migrations()))) {
		t.Fatalf("version: %v\n%s", err, out)
	}
}

func TestVersionOfSkytoolsDatabase(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.Skytools)
	out, err := runCLI(t, "version", "--db", dsn)
	if err != nil || !strings.Contains(out, "database: pgq 3.5, not installed by pgqgo") {
		t.Fatalf("version: %v\n%s", err, out)
	}
	if _, err := runCLI(t, "install", "--db", dsn); err == nil || !strings.Contains(err.Error(), "pgqgo upgrade") {
		t.Fatalf("install over Skytools: %v", err)
	}
}

func TestBadDatabaseArgument(t *testing.T) {
	for _, db := range []string{"host=/nonexistent port=1 dbname=x connect_timeout=2", "postgres://%zz", "not a dsn ==="} {
		if _, err := runCLI(t, "install", "--db", db); err == nil {
			t.Errorf("install --db %q succeeded", db)
		}
	}
}

func TestInstallComponents(t *testing.T) {
	target := pgtest.NewDB(t, pgtest.Empty)
	out, err := runCLI(t, "install", "--db", target, "--only", "pgq_ext", "--dry-run")
	if err != nil || !strings.Contains(out, "would install or refresh schema pgq_ext") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	out, err = runCLI(t, "install", "--db", target, "--only", "pgq_ext")
	if err != nil || !strings.Contains(out, "installed schema pgq_ext") {
		t.Fatalf("--only pgq_ext: %v\n%s", err, out)
	}
	conn := pgtest.Conn(t, target)
	if has := pgtest.Scalar[bool](t, conn, "select to_regnamespace('pgq') is null and to_regprocedure('pgq_ext.is_batch_done(text,bigint)') is not null"); !has {
		t.Fatal("pgq_ext missing or pgq installed too")
	}
	if _, err := runCLI(t, "install", "--db", target, "--only", "pgq_coop"); err == nil || !strings.Contains(err.Error(), "no pgq schema") {
		t.Fatalf("pgq_coop without pgq: %v", err)
	}
	if _, err := runCLI(t, "install", "--db", target, "--only", "pgq_nope"); err == nil || !strings.Contains(err.Error(), `unknown schema "pgq_nope"`) {
		t.Fatalf("bad component: %v", err)
	}

	source := pgtest.NewDB(t, pgtest.Empty)
	out, err = runCLI(t, "install", "--db", source, "--with", "pgq_coop")
	if err != nil || !strings.Contains(out, "installed pgqgo") || !strings.Contains(out, "installed schema pgq_coop") {
		t.Fatalf("--with pgq_coop: %v\n%s", err, out)
	}
	sky := pgtest.NewDB(t, pgtest.Skytools)
	if out, err = runCLI(t, "install", "--db", sky, "--only", "pgq_coop"); err != nil {
		t.Fatalf("pgq_coop beside Skytools pgq: %v\n%s", err, out)
	}
}
