package pgq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Change is a row change decoded from an event of one of PgQ's
// change-capture triggers (pgq.logutriga, pgq.sqltriga, pgq.jsontriga).
type Change struct {
	// Op is INSERT, UPDATE, DELETE or TRUNCATE.
	Op string
	// Table is ev_extra1: "schema.table", unquoted.
	Table string
	// PKey are the key columns named by the event (logutriga and jsontriga
	// events; empty for sqltriga events, whose Where holds the key).
	PKey []string
	// Row maps columns to their values as text (nil for NULL): the whole new
	// row (INSERT, UPDATE) or the old row (DELETE) for logutriga and
	// jsontriga; for sqltriga the inserted row or the columns an UPDATE set.
	Row map[string]*string
	// Columns lists Row's columns in the event's order.
	Columns []string
	// Values holds Row's values in the order of Columns (the same
	// pointers): reading a row by position costs no map lookup.
	Values []*string
	// Where holds a sqltriga UPDATE's or DELETE's key columns and values.
	Where map[string]*string
}

// ErrNotChange is returned for events that no change-capture trigger made.
var ErrNotChange = errors.New("pgq: not a change-capture event")

var opNames = map[string]string{"I": "INSERT", "U": "UPDATE", "D": "DELETE", "R": "TRUNCATE"}

// DecodeChange parses the event of a change-capture trigger, recognising the
// format by its ev_type: "I:pk" (logutriga, urlencoded), "I" (sqltriga, SQL
// fragments), {"op":...} (jsontriga). JSON values come back as text the way
// PostgreSQL would accept them as input: numbers as written, true/false as
// t/f, strings as they are.
func DecodeChange(ev *Event) (*Change, error) {
	c := &Change{Table: ev.Extra1}
	t := ev.Type
	switch {
	case strings.HasPrefix(t, "{"):
		err := decodeJSONChange(c, ev)
		c.Values = valuesOf(c)
		return c, err
	case len(t) >= 2 && t[1] == ':' && strings.Contains("IUD", t[:1]):
		c.Op = opNames[t[:1]]
		if t[2:] != "" {
			c.PKey = strings.Split(t[2:], ",")
		}
		var err error
		c.Row, c.Columns, c.Values, err = decodeURLRow(ev.Data)
		if err != nil {
			return c, fmt.Errorf("pgq: event %d: %w", ev.ID, err)
		}
		return c, nil
	case t == "R":
		c.Op = "TRUNCATE"
		return c, nil
	case t == "I" || t == "U" || t == "D":
		c.Op = opNames[t]
		if err := decodeSQLChange(c, ev.Data); err != nil {
			return c, fmt.Errorf("pgq: event %d: %w", ev.ID, err)
		}
		c.Values = valuesOf(c)
		return c, nil
	}
	return nil, fmt.Errorf("%w: ev_type %q", ErrNotChange, t)
}

// valuesOf lists c.Row's values in the order of c.Columns.
func valuesOf(c *Change) []*string {
	vals := make([]*string, len(c.Columns))
	for i, col := range c.Columns {
		vals[i] = c.Row[col]
	}
	return vals
}

// decodeURLRow parses logutriga's name=value&name2 (no '=': NULL) data,
// keeping the order of the columns.
func decodeURLRow(data string) (map[string]*string, []string, []*string, error) {
	if data == "" {
		return map[string]*string{}, nil, nil, nil
	}
	n := strings.Count(data, "&") + 1
	row := make(map[string]*string, n)
	cols := make([]string, 0, n)
	ptrs := make([]*string, n)
	vals := make([]string, n) // one allocation for the row's values
	for i, rest := 0, data; i < n; i++ {
		part := rest
		if j := strings.IndexByte(rest, '&'); j >= 0 {
			part, rest = rest[:j], rest[j+1:]
		}
		k, v, hasValue := strings.Cut(part, "=")
		name, err := url.QueryUnescape(k)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("column name %q: %w", k, err)
		}
		cols = append(cols, name)
		if !hasValue {
			row[name] = nil
			continue
		}
		if vals[i], err = url.QueryUnescape(v); err != nil {
			return nil, nil, nil, fmt.Errorf("value of %s: %w", name, err)
		}
		ptrs[i] = &vals[i]
		row[name] = ptrs[i]
	}
	return row, cols, ptrs, nil
}

func decodeJSONChange(c *Change, ev *Event) error {
	var head struct {
		Op    string   `json:"op"`
		Table []string `json:"table"`
		PKey  []string `json:"pkey"`
	}
	if err := json.Unmarshal([]byte(ev.Type), &head); err != nil || head.Op == "" {
		return fmt.Errorf("%w: ev_type %q", ErrNotChange, ev.Type)
	}
	c.Op, c.PKey = head.Op, head.PKey
	dec := json.NewDecoder(strings.NewReader(ev.Data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return fmt.Errorf("pgq: event %d: ev_data is not a JSON object", ev.ID)
	}
	c.Row = map[string]*string{}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return fmt.Errorf("pgq: event %d: %w", ev.ID, err)
		}
		name := kt.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return fmt.Errorf("pgq: event %d: value of %s: %w", ev.ID, name, err)
		}
		c.Columns = append(c.Columns, name)
		switch {
		case bytes.Equal(raw, []byte("null")):
			c.Row[name] = nil
		case bytes.Equal(raw, []byte("true")):
			s := "t"
			c.Row[name] = &s
		case bytes.Equal(raw, []byte("false")):
			s := "f"
			c.Row[name] = &s
		case len(raw) > 0 && raw[0] == '"':
			var s string
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("pgq: event %d: value of %s: %w", ev.ID, name, err)
			}
			c.Row[name] = &s
		default:
			s := string(raw)
			c.Row[name] = &s
		}
	}
	return nil
}

// sqlLexer reads sqltriga's fragments: identifiers (plain or "quoted"),
// literals ('..', E'..' with backslash escapes) and NULL, and punctuation.
type sqlLexer struct {
	s   string
	pos int
}

func (l *sqlLexer) skipSpace() {
	for l.pos < len(l.s) && l.s[l.pos] == ' ' {
		l.pos++
	}
}

func (l *sqlLexer) peek(p string) bool {
	l.skipSpace()
	return strings.HasPrefix(l.s[l.pos:], p)
}

func (l *sqlLexer) expect(p string) error {
	if !l.peek(p) {
		return fmt.Errorf("expected %q at offset %d of %q", p, l.pos, l.s)
	}
	l.pos += len(p)
	return nil
}

func (l *sqlLexer) ident() (string, error) {
	l.skipSpace()
	if l.pos < len(l.s) && l.s[l.pos] == '"' {
		var b strings.Builder
		for i := l.pos + 1; i < len(l.s); i++ {
			if l.s[i] == '"' {
				if i+1 < len(l.s) && l.s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				l.pos = i + 1
				return b.String(), nil
			}
			b.WriteByte(l.s[i])
		}
		return "", fmt.Errorf("unterminated identifier in %q", l.s)
	}
	start := l.pos
	for l.pos < len(l.s) && !strings.ContainsRune(" ,=()", rune(l.s[l.pos])) {
		l.pos++
	}
	if start == l.pos {
		return "", fmt.Errorf("expected a column name at offset %d of %q", start, l.s)
	}
	return l.s[start:l.pos], nil
}

// value reads a literal; nil for NULL.
func (l *sqlLexer) value() (*string, error) {
	l.skipSpace()
	rest := l.s[l.pos:]
	if len(rest) >= 4 && strings.EqualFold(rest[:4], "null") {
		l.pos += 4
		return nil, nil
	}
	escaped := false
	if strings.HasPrefix(rest, "E'") {
		escaped = true
		l.pos++
	}
	if l.pos >= len(l.s) || l.s[l.pos] != '\'' {
		return nil, fmt.Errorf("expected a literal at offset %d of %q", l.pos, l.s)
	}
	var b strings.Builder
	for i := l.pos + 1; i < len(l.s); i++ {
		ch := l.s[i]
		switch {
		case ch == '\'' && i+1 < len(l.s) && l.s[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case ch == '\'':
			l.pos = i + 1
			v := b.String()
			return &v, nil
		case ch == '\\' && escaped && i+1 < len(l.s):
			b.WriteByte(l.s[i+1])
			i++
		default:
			b.WriteByte(ch)
		}
	}
	return nil, fmt.Errorf("unterminated literal in %q", l.s)
}

// pairs reads col=value items separated by sep.
func (l *sqlLexer) pairs(sep string, into map[string]*string, order *[]string) error {
	for {
		name, err := l.ident()
		if err != nil {
			return err
		}
		if err := l.expect("="); err != nil {
			return err
		}
		v, err := l.value()
		if err != nil {
			return err
		}
		into[name] = v
		if order != nil {
			*order = append(*order, name)
		}
		if !l.peek(sep) {
			return nil
		}
		l.pos += len(sep)
	}
}

func decodeSQLChange(c *Change, data string) error {
	l := &sqlLexer{s: data}
	c.Row = map[string]*string{}
	switch c.Op {
	case "INSERT":
		if err := l.expect("("); err != nil {
			return err
		}
		for {
			name, err := l.ident()
			if err != nil {
				return err
			}
			c.Columns = append(c.Columns, name)
			if l.peek(")") {
				l.pos++
				break
			}
			if err := l.expect(","); err != nil {
				return err
			}
		}
		if err := l.expect("values ("); err != nil {
			return err
		}
		for i, name := range c.Columns {
			v, err := l.value()
			if err != nil {
				return err
			}
			c.Row[name] = v
			sep := ","
			if i == len(c.Columns)-1 {
				sep = ")"
			}
			if err := l.expect(sep); err != nil {
				return err
			}
		}
	case "UPDATE":
		if err := l.pairs(",", c.Row, &c.Columns); err != nil {
			return err
		}
		if err := l.expect("where "); err != nil {
			return err
		}
		c.Where = map[string]*string{}
		if err := l.pairs(" and ", c.Where, nil); err != nil {
			return err
		}
	case "DELETE":
		c.Where = map[string]*string{}
		if err := l.pairs(" and ", c.Where, nil); err != nil {
			return err
		}
	}
	l.skipSpace()
	if l.pos != len(l.s) {
		return fmt.Errorf("unexpected text at offset %d of %q", l.pos, data)
	}
	return nil
}
