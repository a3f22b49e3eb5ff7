package replica

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestParseConfigLondiste3Files(t *testing.T) {
	// a londiste3 howto file, [londiste3] section, with interpolation
	cfg, err := ParseConfig("/etc/londiste/st3_leaf.ini", []byte(`[londiste3]
job_name = l3_%(host_name)s_leaf
db = dbname=leafdb host=127.0.0.1
queue_name = replika
logfile = /var/log/%(job_name)s.log
pidfile = /var/run/%(job_name)s.pid
loop_delay = 0.5
parallel_copies = 3
lock_timeout = 2
pgq_lazy_fetch = 500
log_size = 5242880
use_skylog = 0
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(cfg.JobName, "l3_") || cfg.Consumer != cfg.JobName || cfg.LogFile != "/var/log/"+cfg.JobName+".log" {
		t.Errorf("job %q consumer %q logfile %q", cfg.JobName, cfg.Consumer, cfg.LogFile)
	}
	if cfg.LoopDelay != 500*time.Millisecond || cfg.ParallelCopies != 3 || cfg.LockTimeout != 2*time.Second || cfg.FetchSize != 500 {
		t.Errorf("parsed %+v", cfg)
	}
	if strings.Join(cfg.Ignored, ",") != "log_size,use_skylog" {
		t.Errorf("ignored keys %v", cfg.Ignored)
	}
	// [londiste], job_name from the file name, defaults
	cfg, err = ParseConfig("/x/leaf.ini", []byte("[londiste]\ndb = dbname=x\nqueue_name = q\n"), map[string]string{"loop_delay": "0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.JobName != "leaf" || cfg.Consumer != "leaf" || cfg.LoopDelay != 100*time.Millisecond || cfg.ParallelCopies != 8 ||
		cfg.LockTimeout != 10*time.Second || cfg.LocalWMPublishPeriod != 300*time.Second {
		t.Errorf("defaults %+v", cfg)
	}
	// londiste3's split-copy keys map onto pgqgo's page ranges
	cfg, err = ParseConfig("/x/leaf.ini", []byte("[londiste]\ndb = dbname=x\nqueue_name = q\nthreaded_copy_tables = public.big*, logs\nthreaded_copy_pool_size = 3\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CopyStreams != 3 || strings.Join(cfg.SplitCopyTables, "|") != "public.big*|logs" {
		t.Errorf("split copy: %d streams, tables %v", cfg.CopyStreams, cfg.SplitCopyTables)
	}
	if !matchesAny(cfg.SplitCopyTables, "public.bigone") || !matchesAny(cfg.SplitCopyTables, "app.logs") || matchesAny(cfg.SplitCopyTables, "app.bigone") {
		t.Error("threaded_copy_tables globs matched wrongly")
	}
	cfg, _ = ParseConfig("/x/leaf.ini", []byte("[londiste]\ndb = dbname=x\nqueue_name = q\nthreaded_copy_pool_size = 1\n"), nil)
	if want := min(max(runtime.NumCPU(), 2), 8); cfg.CopyStreams != want {
		t.Errorf("threaded_copy_pool_size = 1 gave %d streams, want pgqgo's default %d (CPUs)", cfg.CopyStreams, want)
	}
}

func TestParseConfigRefusesMistakes(t *testing.T) {
	for name, body := range map[string]string{
		"no section":    "[pgqd]\ndb = dbname=x\nqueue_name = q\n",
		"unknown key":   "[londiste]\ndb = dbname=x\nqueue_name = q\nparalel_copies = 2\n",
		"no db":         "[londiste]\nqueue_name = q\n",
		"no queue":      "[londiste]\ndb = dbname=x\n",
		"bad number":    "[londiste]\ndb = dbname=x\nqueue_name = q\nloop_delay = soon\n",
		"bad bool":      "[londiste]\ndb = dbname=x\nqueue_name = q\nlocal_only = maybe\n",
		"bad copies":    "[londiste]\ndb = dbname=x\nqueue_name = q\nparallel_copies = 0\n",
		"bad db":        "[londiste]\ndb = host='\nqueue_name = q\n",
		"batch collect": "[londiste]\ndb = dbname=x\nqueue_name = q\npgq_batch_collect_events = 100\n",
	} {
		if _, err := ParseConfig("/x/n.ini", []byte(body), nil); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestExecAttrs(t *testing.T) {
	sql := "--*-- Local-Table: public.a,\n--*--   b\n--*-- Need-Function: public.f(2)\n-- a comment\nalter table @public.a@ add column x int;\n"
	a, err := ParseExecAttrs(sql)
	if err != nil {
		t.Fatal(err)
	}
	if got := a.URLEncode(); got != "local-table=public.a%2Cb&need-function=public.f%282%29" {
		t.Errorf("urlencoded %q", got)
	}
	b, err := parseExecAttrsURL(a.URLEncode())
	if err != nil || b.URLEncode() != a.URLEncode() {
		t.Errorf("round trip: %v %q", err, b.URLEncode())
	}
	out, err := a.processSQL(sql, map[string]string{"public.a": "public.a_copy", "public.b": "public.b"}, nil)
	if err != nil || !strings.Contains(out, `alter table "public"."a_copy" add column`) {
		t.Errorf("processSQL: %v %q", err, out)
	}
	if _, err := ParseExecAttrs("--*-- Local-Tabel: x\n"); err == nil {
		t.Error("a misspelt key was accepted")
	}
}

func TestSnapshotSees(t *testing.T) {
	s, err := parseSnapshot("100:110:103,105")
	if err != nil {
		t.Fatal(err)
	}
	for txid, want := range map[int64]bool{99: true, 100: true, 103: false, 104: true, 105: false, 109: true, 110: false, 200: false} {
		if s.sees(txid) != want {
			t.Errorf("sees(%d) = %v", txid, !want)
		}
	}
	if _, err := parseSnapshot("1:2"); err == nil {
		t.Error("bad snapshot accepted")
	}
}
