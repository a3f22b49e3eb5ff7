package pgcluster

import (
	"context"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestStartRestartStop(t *testing.T) {
	ctx := context.Background()
	c, err := Start(ctx, Options{Settings: map[string]string{"application_name": "it's quoted"}})
	if err != nil {
		t.Fatal(err)
	}
	query := func() string {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var user string
		if err := conn.QueryRow(ctx, "select current_setting('fsync') || ' ' || current_user").Scan(&user); err != nil {
			t.Fatal(err)
		}
		return user
	}
	if got := query(); got != "off postgres" {
		t.Fatalf("got %q", got)
	}
	if err := c.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if got := query(); got != "off postgres" {
		t.Fatalf("after restart: %q", got)
	}
	dir := c.Dir
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster dir %s left behind", dir)
	}
}

func TestDSNQuotesDatabaseNames(t *testing.T) {
	c := &Cluster{SocketDir: "/tmp/x", Port: 5, User: "postgres"}
	for _, name := range []string{"plain", "with space", `it's`, `back\slash`} {
		cfg, err := pgx.ParseConfig(c.DSN(name))
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if cfg.Database != name {
			t.Fatalf("DSN for %q parsed as %q", name, cfg.Database)
		}
	}
}

func TestFindBinDir(t *testing.T) {
	dir, err := FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir + "/initdb"); err != nil {
		t.Fatal(err)
	}
}
