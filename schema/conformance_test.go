package schema_test

import (
	"context"
	"strings"
	"testing"

	"pgqgo/internal/pgtest"
)

// Conformance cases with no Skytools counterpart to compare against (pgqgo's
// own functions following PgQ 3.5's rules); the compared ones are scenarios
// in scenarios_test.go.

// TestReplicaWritesToDisabledQueue: pgq.insert_event_bulk (pgqgo's) follows
// PgQ's rule for disabled queues: refused, except in a replica session (a
// cascade worker writing a branch queue).
func TestReplicaWritesToDisabledQueue(t *testing.T) {
	conn := pgtest.Conn(t, pgtest.NewDB(t, pgtest.PgqGo))
	pgtest.Exec(t, conn, "select pgq.create_queue('q')")
	pgtest.Exec(t, conn, "select pgq.set_queue_config('q', 'disable_insert', 'true')")
	bulk := "select pgq.insert_event_bulk('q', array['t', 't'], array['a', 'b'])"
	if _, err := conn.Exec(context.Background(), bulk); err == nil || !strings.Contains(err.Error(), "Insert into queue disallowed") {
		t.Fatalf("bulk insert into a disabled queue: %v", err)
	}
	pgtest.Exec(t, conn, "set session_replication_role = replica")
	if n := pgtest.Scalar[int64](t, conn, bulk); n != 2 {
		t.Fatalf("bulk insert as replica wrote %d events, want 2", n)
	}
	pgtest.Exec(t, conn, "set session_replication_role = origin")
	if n := pgtest.Scalar[int64](t, conn, "select count(*) from pgq.event_1"); n != 2 {
		t.Fatalf("%d events stored, want 2", n)
	}
}
