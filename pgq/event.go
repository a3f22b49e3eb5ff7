package pgq

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
)

// Event is one queue event. Producers fill Type, Data and the extras; the
// other fields are set on events read from a batch.
//
// NULL fields read back as empty strings, and are marked in Null as well.
// When producing, empty extras are stored as NULL (PgQ's convention for
// unused fields); Type and Data are stored as given, or as NULL when Null
// marks them.
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
	// Null marks the fields that are SQL NULL (their strings are then "").
	Null Nulls
}

// Nulls marks the fields of an Event that are SQL NULL.
type Nulls uint8

const (
	// NullType: ev_type is NULL.
	NullType Nulls = 1 << iota
	// NullData: ev_data is NULL.
	NullData
	// NullExtra1..NullExtra4: ev_extra1..4 is NULL (read events only; a
	// producer writes an empty Extra as NULL whatever these say).
	NullExtra1
	NullExtra2
	NullExtra3
	NullExtra4
)

// typeArg and dataArg are Type and Data as query arguments: nil for NULL.
func (ev *Event) typeArg() *string { return nullIf(ev.Null&NullType != 0, ev.Type) }
func (ev *Event) dataArg() *string { return nullIf(ev.Null&NullData != 0, ev.Data) }

func nullIf(null bool, s string) *string {
	if null {
		return nil
	}
	return &s
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

// binaryResults asks for every result column in binary format.
var binaryResults = []int16{1}

// pgEpoch is PostgreSQL's timestamp origin.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// decodeEvent decodes one row of eventColumns in binary format.
func decodeEvent(v [][]byte) (Event, error) {
	if len(v) != 10 {
		return Event{}, fmt.Errorf("pgq: batch query returned %d columns, want 10", len(v))
	}
	var ev Event
	var err error
	if ev.ID, err = int8Value(v[0], "ev_id"); err != nil {
		return ev, err
	}
	us, err := int8Value(v[1], "ev_time")
	if err != nil {
		return ev, err
	}
	ev.Time = pgEpoch.Add(time.Duration(us) * time.Microsecond).Local()
	if v[2] != nil {
		if ev.TxID, err = int8Value(v[2], "ev_txid"); err != nil {
			return ev, err
		}
	}
	if v[3] != nil {
		if len(v[3]) != 4 {
			return ev, fmt.Errorf("pgq: ev_retry: %d bytes", len(v[3]))
		}
		ev.Retry = int(int32(binary.BigEndian.Uint32(v[3])))
	}
	ev.Type, ev.Data = string(v[4]), string(v[5])
	if v[4] == nil {
		ev.Null |= NullType
	}
	if v[5] == nil {
		ev.Null |= NullData
	}
	ev.Extra1, ev.Extra2, ev.Extra3, ev.Extra4 = string(v[6]), string(v[7]), string(v[8]), string(v[9])
	for i := range 4 {
		if v[6+i] == nil {
			ev.Null |= NullExtra1 << i
		}
	}
	return ev, nil
}

func int8Value(b []byte, col string) (int64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("pgq: %s: %d bytes, want 8 (NULL?)", col, len(b))
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// nullIfEmpty maps "" to SQL NULL.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
