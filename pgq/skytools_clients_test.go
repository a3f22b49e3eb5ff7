package pgq_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
	"github.com/pgqgo/pgqgo/pgq"
	"github.com/pgqgo/pgqgo/schema"
)

// runSkytoolsClient runs testdata/skytools_clients.py in mode with an ini
// section built from keys.
func runSkytoolsClient(t *testing.T, mode string, keys map[string]string) {
	t.Helper()
	if err := exec.Command(skytoolsPython, "-c", "import pgq").Run(); err != nil {
		t.Fatalf("python3-pgq is needed (scripts/install-deps.sh installs it): %v", err)
	}
	dir := t.TempDir()
	ini := fmt.Sprintf("[skytools_clients]\njob_name = skytools_clients_%s\nlogfile = %s\npidfile = %s\nloop_delay = 0.01\n",
		mode, filepath.Join(dir, "log"), filepath.Join(dir, "pid"))
	for k, v := range keys {
		ini += k + " = " + v + "\n"
	}
	path := filepath.Join(dir, "c.ini")
	if err := os.WriteFile(path, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(skytoolsPython, "testdata/skytools_clients.py", mode, path).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "log"))
		t.Fatalf("skytools %s consumer: %v\n%s\n%s", mode, err, out, log)
	}
}

// TestSkytoolsClientsOnPgqgoCoopAndExt: Skytools' CoopConsumer and
// RemoteConsumer work unchanged against pgqgo's pgq_coop and pgq_ext, side by
// side with pgqgo's own Go members in the same group.
func TestSkytoolsClientsOnPgqgoCoopAndExt(t *testing.T) {
	ctx := context.Background()
	dsn := newQueueDB(t, pgtest.PgqGo, "q")
	conn := pgtest.Conn(t, dsn)
	pgtest.Exec(t, conn, "create table seen (member text, ev_id bigint)")
	target := pgtest.NewDB(t, pgtest.Empty)
	tconn := pgtest.Conn(t, target)
	if err := schema.InstallComponent(ctx, tconn, schema.Ext); err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, tconn, "create table applied (ev_id bigint, data text)")
	pgtest.Exec(t, conn, "select pgq.register_consumer('q', 'remote')")
	pgtest.Exec(t, conn, "select pgq_coop.register_subconsumer('q', 'grp', 'py1')")
	p := pgq.NewProducer(conn, "q")
	for i := range 30 {
		if err := p.InsertBatch(ctx, []pgq.Event{{Type: "t", Data: fmt.Sprint(2 * i)}, {Type: "t", Data: fmt.Sprint(2*i + 1)}}); err != nil {
			t.Fatal(err)
		}
		tick(t, conn, "q")
	}

	// Skytools' CoopConsumer takes the group's batches through pgq_coop
	runSkytoolsClient(t, "coop", map[string]string{"db": dsn, "queue_name": "q", "consumer_name": "grp",
		"subconsumer_name": "py1", "subconsumer_timeout": "1 hour"})
	if n := pgtest.Scalar[int64](t, conn, "select count(distinct ev_id) from seen where member = 'py1'"); n != 60 {
		t.Fatalf("python coop member saw %d events", n)
	}
	// Skytools' RemoteConsumer records its batches in pgqgo's pgq_ext
	runSkytoolsClient(t, "remote", map[string]string{"db": dsn, "dst_db": target, "queue_name": "q", "consumer_name": "remote"})
	if n := pgtest.Scalar[int64](t, tconn, "select count(distinct ev_id) from applied"); n != 60 {
		t.Fatalf("python remote consumer applied %d events", n)
	}
	last := pgtest.Scalar[int64](t, tconn, "select last_batch_id from pgq_ext.completed_batch where consumer_id = 'remote' and subconsumer_id = ''")
	if !pgtest.Scalar[bool](t, tconn, "select pgq_ext.is_batch_done('remote', $1)", last) {
		t.Fatal("pgq_ext does not report the RemoteConsumer's last batch as done")
	}

	// a Go member joins the Python member's group and gets the next batches
	pgtest.Exec(t, conn, "select pgq.insert_event('q', 't', 'for the group')")
	tick(t, conn, "q")
	goMember, _ := pgq.NewConsumer(dsn, pgq.ConsumerConfig{Queue: "q", Name: "grp", Subconsumer: "go1", NoListen: true})
	rctx, cancel := context.WithCancel(ctx)
	var got string
	goMember.Run(rctx, pgq.EventFunc(func(ctx context.Context, tx pgx.Tx, ev *pgq.Event) error {
		got = ev.Data
		cancel()
		return nil
	}))
	if got != "for the group" {
		t.Fatalf("go member of the python group got %q", got)
	}
}
