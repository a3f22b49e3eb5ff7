package demo

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// postgresRunningIn reports whether a postgres process serves dir.
func postgresRunningIn(dir string) bool {
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err == nil && strings.Contains(string(b), "postgres") && strings.Contains(string(b), dir) {
			return true
		}
	}
	return false
}

func TestDemoRunsEndToEndAndCleansUp(t *testing.T) {
	var out bytes.Buffer
	start := time.Now()
	sum, err := Run(context.Background(), &out, Options{Duration: 2 * time.Second, Rate: 500})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if took := time.Since(start); took > 60*time.Second {
		t.Fatalf("demo took %s", took)
	}
	for _, want := range []string{"ticker daemon started", "billing out", "shipping out", "summary", "every event, once", "cluster is being removed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
	if sum.Produced < 500 || sum.Consumed["billing"] != sum.Produced || sum.Consumed["shipping"] != sum.Produced {
		t.Fatalf("summary %+v", sum)
	}
	// nothing left behind: the cluster's directory and server are gone
	line := out.String()[strings.Index(out.String(), "PostgreSQL on ")+len("PostgreSQL on "):]
	dir := strings.TrimSuffix(strings.Fields(line)[0], ",")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("cluster directory %s left behind (%v)", dir, err)
	}
	if postgresRunningIn(dir) {
		t.Fatalf("a postgres process still serves %s", dir)
	}
}

func TestDemoKeepLeavesClusterRunning(t *testing.T) {
	var out bytes.Buffer
	sum, err := Run(context.Background(), &out, Options{Duration: time.Second, Rate: 200, Keep: true})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		_ = syscall.Kill(sum.Pid, syscall.SIGINT)
		for i := 0; i < 100 && postgresRunningIn(sum.Dir); i++ {
			time.Sleep(100 * time.Millisecond)
		}
		os.RemoveAll(sum.Dir)
	})
	if !strings.Contains(out.String(), "kill -INT") || !strings.Contains(out.String(), "psql '") {
		t.Fatalf("no connection instructions:\n%s", out.String())
	}
	conn, err := pgx.Connect(context.Background(), sum.DSN)
	if err != nil {
		t.Fatalf("kept cluster unreachable: %v", err)
	}
	defer conn.Close(context.Background())
	var n int64
	if err := conn.QueryRow(context.Background(), "select count(*) from pgq.consumer").Scan(&n); err != nil || n != 2 {
		t.Fatalf("kept cluster: %d consumers, %v", n, err)
	}
}

func TestDemoOnExistingDatabase(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.Empty)
	var out bytes.Buffer
	sum, err := Run(context.Background(), &out, Options{DB: dsn, Duration: time.Second, Rate: 300})
	if err != nil || sum.Consumed["billing"] != sum.Produced {
		t.Fatalf("demo: %v %+v\n%s", err, sum, out.String())
	}
	conn := pgtest.Conn(t, dsn)
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.queue"); n != 0 {
		t.Fatalf("demo queue left behind: %d queues", n)
	}
}

// TestDemoInterruptedSaysHowLong: Ctrl-C ends the producing early, every
// event is still consumed, and the summary gives the real time produced.
func TestDemoInterruptedSaysHowLong(t *testing.T) {
	dsn := pgtest.NewDB(t, pgtest.Empty)
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// "Ctrl-C" a second after producing starts, however long the start takes
	w := &watchWriter{w: &out, word: "producing", then: func() { time.AfterFunc(time.Second, cancel) }}
	_, err := Run(ctx, w, Options{DB: dsn, Duration: time.Minute, Rate: 200})
	if err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if strings.Contains(out.String(), "in 1m0s") || !strings.Contains(out.String(), "every event, once") {
		t.Fatalf("the summary gives the requested time, not the real one:\n%s", out.String())
	}
	if !strings.Contains(out.String(), "installed in this database by the demo, and left there") {
		t.Fatalf("demo --db does not say it leaves the schema installed:\n%s", out.String())
	}
}

// watchWriter writes to w and calls then once, the first time word is
// written.
type watchWriter struct {
	w    *bytes.Buffer
	word string
	then func()
	once sync.Once
}

func (ww *watchWriter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte(ww.word)) {
		ww.once.Do(ww.then)
	}
	return ww.w.Write(p)
}
