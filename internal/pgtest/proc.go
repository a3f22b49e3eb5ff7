package pgtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// statFields returns the fields of /proc/PID/stat after the command name
// (the first is the state), or nil for a process that is gone.
func statFields(pid int) []string {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(data)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
}

// ProcCPU returns a process's parent and its CPU (utime+stime) in clock
// ticks (1/100 s), from /proc; zeros for a process that is gone.
func ProcCPU(pid int) (ppid int, ticks int64) {
	f := statFields(pid)
	if f == nil {
		return 0, 0
	}
	ppid, _ = strconv.Atoi(f[1])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, ut + st
}

// Postmaster is the pid of the server conn is connected to: its backend's
// parent.
func Postmaster(t testing.TB, conn *pgx.Conn) int {
	t.Helper()
	pid := Scalar[int32](t, conn, "select pg_backend_pid()")
	ppid, _ := ProcCPU(int(pid))
	if ppid <= 1 {
		t.Fatalf("pgtest: no postmaster found for backend %d", pid)
	}
	return ppid
}

// ClusterCPU sums the CPU of a postmaster and all its children (every
// backend and background process of the server, those that ended
// included), in clock ticks.
func ClusterCPU(postmaster int) int64 {
	_, total := ProcCPU(postmaster)
	total += reapedCPU(postmaster)
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, t := ProcCPU(pid); ppid == postmaster {
			total += t
		}
	}
	return total
}

// MachineCPU returns the machine's busy and total CPU time over all cores
// since boot, in clock ticks (/proc/stat's first line; iowait counts as
// idle).
func MachineCPU() (busy, total int64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseInt(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

// reapedCPU is the CPU of a process's children that ended and that it
// waited for (cutime+cstime), in clock ticks.
func reapedCPU(pid int) int64 {
	f := statFields(pid)
	if f == nil {
		return 0
	}
	cut, _ := strconv.ParseInt(f[13], 10, 64)
	cst, _ := strconv.ParseInt(f[14], 10, 64)
	return cut + cst
}
