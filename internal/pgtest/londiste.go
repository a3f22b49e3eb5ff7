package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Londiste3 returns a runner of Skytools' londiste3 (Debian python3-londiste)
// in dir: each call runs one command against a node's ini file, waits up to
// two minutes, and returns its output, failing the test if it fails. It
// fails the test at once when londiste is not installed.
func Londiste3(t testing.TB, ctx context.Context, dir string) func(ini string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("londiste"); err != nil {
		t.Fatalf("londiste not installed (scripts/install-deps.sh installs python3-londiste): %v", err)
	}
	return func(ini string, args ...string) string {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		defer cancel()
		cmd := exec.CommandContext(cctx, "londiste", append([]string{ini}, args...)...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("londiste %s %v: %v\n%s", filepath.Base(ini), args, err, out)
		}
		return string(out)
	}
}

// LondisteINI writes dir/<name>.ini for a londiste3 node of queue replika
// on dsn (job l_<name>, a 0.1 s loop, the local watermark published every
// second instead of every 5 minutes), with extra ini lines, and returns its
// path.
func LondisteINI(t testing.TB, dir, name, dsn, extra string) string {
	t.Helper()
	path := filepath.Join(dir, name+".ini")
	body := fmt.Sprintf("[londiste]\njob_name = l_%s\ndb = %s\nqueue_name = replika\nlogfile = %s\npidfile = %s\nloop_delay = 0.1\n"+
		"local_wm_publish_period = 1\n%s", name, dsn, filepath.Join(dir, name+".log"), filepath.Join(dir, name+".pid"), extra)
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
