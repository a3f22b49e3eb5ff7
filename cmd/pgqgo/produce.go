package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/pgqgo/pgqgo/pgq"
)

// jsonLine is one input line of produce --json.
type jsonLine struct {
	Type   json.RawMessage `json:"type"`
	Data   json.RawMessage `json:"data"`
	Extra1 string          `json:"extra1"`
	Extra2 string          `json:"extra2"`
	Extra3 string          `json:"extra3"`
	Extra4 string          `json:"extra4"`
	// consume's output carries these too; they are accepted and ignored, so
	// `pgqgo consume A c | pgqgo produce B --json` copies events between queues
	Batch json.RawMessage `json:"batch"`
	ID    json.RawMessage `json:"id"`
	Time  json.RawMessage `json:"time"`
	TxID  json.RawMessage `json:"txid"`
	Retry json.RawMessage `json:"retry"`
}

func produceCmd() *cobra.Command {
	var ev pgq.Event
	var asJSON bool
	var chunk int
	cmd := &cobra.Command{
		Use:   "produce QUEUE [DATA ...]",
		Short: "Insert events: one per DATA argument, or one per line of standard input",
		Long: "Each DATA argument, or else each line of standard input, becomes one event with --type and\n" +
			"the --extra fields. With --json each input line is an object\n" +
			`  {"type": "...", "data": <string or any JSON value>, "extra1": "...", ...}` + "\n" +
			"(a non-string data is stored as its JSON text). Standard input is inserted in transactions\n" +
			"of --chunk events; on a bad line the events before it stay inserted and pgqgo says how many.",
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) < 1 || args[0] == "" {
				return withCode(exitUsage, "%s needs QUEUE; see --help", cmd.CommandPath())
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if chunk < 1 {
				return withCode(exitUsage, "--chunk must be at least 1")
			}
			return withPgq(cmd, func(ctx context.Context, db pgq.DB) error {
				if err := needQueue(ctx, db, args[0]); err != nil {
					return err
				}
				p := pgq.NewProducer(db, args[0])
				out := cmd.OutOrStdout()
				if len(args) > 1 {
					var evs []pgq.Event
					for _, d := range args[1:] {
						e := ev
						e.Data = d
						if asJSON {
							var err error
							if e, err = parseJSONLine([]byte(d), ev); err != nil {
								return withCode(exitUsage, "argument %q: %v", d, err)
							}
						}
						evs = append(evs, e)
					}
					if err := p.InsertBatch(ctx, evs); err != nil {
						return err
					}
					fmt.Fprintf(out, "inserted %s into %s\n", count(len(evs), "event"), args[0])
					return nil
				}
				n, err := produceLines(ctx, p, cmd.InOrStdin(), ev, asJSON, chunk)
				if err != nil {
					return fmt.Errorf("%w (inserted before it: %s)", err, count(n, "event"))
				}
				fmt.Fprintf(out, "inserted %s into %s\n", count(n, "event"), args[0])
				return nil
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&ev.Type, "type", "text", "event type")
	f.StringVar(&ev.Extra1, "extra1", "", "ev_extra1")
	f.StringVar(&ev.Extra2, "extra2", "", "ev_extra2")
	f.StringVar(&ev.Extra3, "extra3", "", "ev_extra3")
	f.StringVar(&ev.Extra4, "extra4", "", "ev_extra4")
	f.BoolVar(&asJSON, "json", false, "input lines (or arguments) are JSON objects with type, data and extras")
	f.IntVar(&chunk, "chunk", 1000, "events per transaction when reading standard input")
	return cmd
}

// maxLine is the longest input line produce reads: PostgreSQL's limit for
// one text value.
const maxLine = 1<<30 - 1

// produceLines inserts one event per input line, chunk per transaction.
// Interrupted (Ctrl-C cancels ctx), it inserts the lines read so far, stops
// at once even while standard input is still open, and says so.
func produceLines(ctx context.Context, p *pgq.Producer, in io.Reader, defaults pgq.Event, asJSON bool, chunk int) (int, error) {
	type input struct {
		text []byte
		err  error
	}
	lines := make(chan input, 64)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(in)
		// a line may be as long as a PostgreSQL value may (1 GB); the buffer
		// only grows that far for a line that needs it
		sc.Buffer(make([]byte, 64*1024), maxLine)
		for sc.Scan() {
			select {
			case lines <- input{text: bytes.Clone(sc.Bytes())}:
			case <-stop:
				return
			}
		}
		if err := sc.Err(); err != nil {
			select {
			case lines <- input{err: err}:
			case <-stop:
			}
		}
	}()
	var evs []pgq.Event
	n, line := 0, 0
	flush := func() error {
		if len(evs) == 0 {
			return nil
		}
		// what was read is inserted even after an interrupt, given 30 s
		// from the interrupt on (a big insert on a busy server may take
		// longer than that by itself: no limit before)
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		defer cancel()
		unwatch := context.AfterFunc(ctx, func() { time.AfterFunc(30*time.Second, cancel) })
		defer unwatch()
		if err := p.InsertBatch(fctx, evs); err != nil {
			return err
		}
		n += len(evs)
		evs = evs[:0]
		return nil
	}
	for {
		var l input
		var ok bool
		select {
		case <-ctx.Done():
			if err := flush(); err != nil {
				return n, err
			}
			return n, withCode(exitError, "interrupted after line %d, every line read so far inserted", line)
		case l, ok = <-lines:
		}
		if !ok {
			return n, flush()
		}
		if l.err != nil {
			if ferr := flush(); ferr != nil {
				return n, ferr
			}
			if errors.Is(l.err, bufio.ErrTooLong) {
				return n, withCode(exitUsage, "line %d is longer than %d bytes, the most a PostgreSQL value holds", line+1, maxLine)
			}
			return n, fmt.Errorf("reading standard input at line %d: %w", line+1, l.err)
		}
		line++
		e := defaults
		if asJSON {
			if len(bytes.TrimSpace(l.text)) == 0 {
				continue
			}
			var err error
			if e, err = parseJSONLine(l.text, defaults); err != nil {
				if ferr := flush(); ferr != nil {
					return n, ferr
				}
				return n, withCode(exitUsage, "line %d: %v", line, err)
			}
		} else {
			e.Data = string(l.text)
		}
		evs = append(evs, e)
		if len(evs) >= chunk {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
}

func parseJSONLine(text []byte, defaults pgq.Event) (pgq.Event, error) {
	var l jsonLine
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return pgq.Event{}, fmt.Errorf("bad JSON event (want {\"type\":..., \"data\":..., \"extra1\":...}): %v", err)
	}
	// one event per line: anything after the object would be lost
	if _, err := dec.Token(); err != io.EOF {
		return pgq.Event{}, fmt.Errorf("bad JSON event: more than one JSON value on the line (one event per line)")
	}
	e := defaults
	// null is NULL (as consume prints a NULL type or data); an absent field
	// takes the default
	switch {
	case string(l.Type) == "null":
		e.Type, e.Null = "", e.Null|pgq.NullType
	case len(l.Type) > 0:
		var t string
		if err := json.Unmarshal(l.Type, &t); err != nil {
			return pgq.Event{}, fmt.Errorf("bad JSON event: type must be a string or null")
		}
		e.Type = t
	}
	if string(l.Data) == "null" {
		e.Data, e.Null = "", e.Null|pgq.NullData
	} else if len(l.Data) > 0 {
		var s string
		if err := json.Unmarshal(l.Data, &s); err == nil {
			e.Data = s
		} else {
			var buf bytes.Buffer
			if err := json.Compact(&buf, l.Data); err != nil {
				return pgq.Event{}, err
			}
			e.Data = buf.String()
		}
	}
	for i, x := range []string{l.Extra1, l.Extra2, l.Extra3, l.Extra4} {
		if x != "" {
			*[]*string{&e.Extra1, &e.Extra2, &e.Extra3, &e.Extra4}[i] = x
		}
	}
	return e, nil
}
