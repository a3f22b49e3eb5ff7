package pgq

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// Event is one queue event. Producers fill Type, Data and the extras; the
// other fields are set on events read from a batch.
//
// NULL fields read back as empty strings. When producing, empty extras are
// stored as NULL (PgQ's convention for unused fields); Type and Data are
// stored as given.
type Event struct {
	// ID is ev_id, unique within the queue.
	ID int64
	// Time is ev_time, when the event was inserted.
	Time time.Time
	// TxID is ev_txid, the inserting transaction's 64-bit id.
	TxID int64
	// Retry is ev_retry: how many times the event was retried before (0 on first delivery).
	Retry int
	// Type is ev_type, e.g. "order.created", or "I:id" for trigger events.
	Type string
	// Data is ev_data, the payload.
	Data string
	// Extra1..Extra4 are ev_extra1..4; triggers put the table name in Extra1.
	Extra1, Extra2, Extra3, Extra4 string
}

// JSONEvent builds an event whose Data is v encoded as JSON.
func JSONEvent(typ string, v any) (Event, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Event{}, fmt.Errorf("pgq: encode %s event as JSON: %w", typ, err)
	}
	return Event{Type: typ, Data: string(data)}, nil
}

// DecodeJSON decodes the event's Data as JSON into v.
func (e *Event) DecodeJSON(v any) error {
	if err := json.Unmarshal([]byte(e.Data), v); err != nil {
		return fmt.Errorf("pgq: event %d (type %q): decode JSON data: %w", e.ID, e.Type, err)
	}
	return nil
}

// eventColumns is the column list of get_batch_events and get_batch_cursor.
const eventColumns = "ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4"

// eventScanner reuses its scan targets across rows.
type eventScanner struct {
	id                            int64
	tm                            time.Time
	retry                         pgtype.Int4
	txid                          pgtype.Int8
	typ, data, ex1, ex2, ex3, ex4 pgtype.Text
	dest                          []any
}

func newEventScanner() *eventScanner {
	s := &eventScanner{}
	s.dest = []any{&s.id, &s.tm, &s.txid, &s.retry, &s.typ, &s.data, &s.ex1, &s.ex2, &s.ex3, &s.ex4}
	return s
}

// event returns the row last scanned into s.dest.
func (s *eventScanner) event() Event {
	return Event{
		ID: s.id, Time: s.tm, TxID: s.txid.Int64, Retry: int(s.retry.Int32),
		Type: s.typ.String, Data: s.data.String,
		Extra1: s.ex1.String, Extra2: s.ex2.String, Extra3: s.ex3.String, Extra4: s.ex4.String,
	}
}

// nullIfEmpty maps "" to SQL NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
