package pgtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
)

// SkytoolsPython is the interpreter that has Debian's python3-pgq.
const SkytoolsPython = "/usr/bin/python3"

// SkytoolsConsumer runs Skytools' own Consumer class (python3-pgq, through
// pgq/testdata/skytools_consumer.py: a no-op per-event handler) as consumer
// on queue until it has nothing left. It returns how many events it saw and
// the seconds from its first batch to its end.
func SkytoolsConsumer(tb testing.TB, dsn, queue, consumer string) (events int64, secs float64) {
	tb.Helper()
	if err := exec.Command(SkytoolsPython, "-c", "import pgq").Run(); err != nil {
		tb.Fatalf("python3-pgq is needed (scripts/install-deps.sh installs it): %v", err)
	}
	_, self, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(self), "..", "..", "pgq", "testdata", "skytools_consumer.py")
	dir := tb.TempDir()
	ini := filepath.Join(dir, "consumer.ini")
	cfg := fmt.Sprintf("[skytools_consumer]\njob_name = skytools_consumer\ndb = %s\nqueue_name = %s\nconsumer_name = %s\n"+
		"logfile = %s\npidfile = %s\nloop_delay = 0.01\n",
		dsn, queue, consumer, filepath.Join(dir, "c.log"), filepath.Join(dir, "c.pid"))
	if err := os.WriteFile(ini, []byte(cfg), 0o600); err != nil {
		tb.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(SkytoolsPython, script, ini)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		tb.Fatalf("python3-pgq consumer: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`events (\d+) seconds ([0-9.]+)`).FindStringSubmatch(out.String())
	if m == nil {
		tb.Fatalf("python3-pgq consumer output: %s", out.String())
	}
	events, _ = strconv.ParseInt(m[1], 10, 64)
	secs, _ = strconv.ParseFloat(m[2], 64)
	return events, secs
}
