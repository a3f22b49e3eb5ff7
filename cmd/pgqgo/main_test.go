package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"pgqgo/internal/pgtest"
	"pgqgo/schema"
)

// TestMain doubles as the pgqgo binary: with PGQGO_TEST_RUN_MAIN=1 the test
// executable runs main(), so tests can start real pgqgo processes.
func TestMain(m *testing.M) {
	if os.Getenv("PGQGO_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"pgqgo"}, os.Args[1:]...)
		main()
		os.Exit(0)
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
	if _, err := runCLI(t, "install", "--db", dsn); err == nil || !strings.Contains(err.Error(), "not installed by pgqgo") {
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
