package replica

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// localMaps are the node's local tables (name to destination) and
// sequences, for EXECUTE attributes.
func localMaps(ctx context.Context, db queryer, queue string) (map[string]string, map[string]bool, error) {
	tables := map[string]string{}
	ts, err := tableList(ctx, db, queue)
	if err != nil {
		return nil, nil, err
	}
	for _, t := range ts {
		if t.Local {
			tables[t.Name] = t.Dest()
		}
	}
	seqs := map[string]bool{}
	ss, err := seqList(ctx, db, queue)
	if err != nil {
		return nil, nil, err
	}
	for _, s := range ss {
		if s.Local {
			seqs[s.Name] = true
		}
	}
	return tables, seqs, nil
}

// Execute runs SQL scripts on the root, all in one transaction, and
// queues each as an EXECUTE event that every node applies at the same
// position in the stream (londiste3 execute). A file name already applied
// is skipped.
func (a *Admin) Execute(ctx context.Context, files ...string) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	if n.Type != "root" {
		return errors.New("execute: run it on the root node")
	}
	if len(files) == 0 {
		return errors.New("execute: name the SQL files")
	}
	tx, err := a.db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	tables, seqs, err := localMaps(ctx, tx, a.cfg.Queue)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "select londiste.set_session_replication_role('local', true)"); err != nil {
		return err
	}
	for _, fn := range files {
		body, err := os.ReadFile(fn)
		if err != nil {
			return fmt.Errorf("execute: %w", err)
		}
		name := filepath.Base(fn)
		attrs, err := ParseExecAttrs(string(body))
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		res, err := call(ctx, tx, a.log, "select * from londiste.execute_start($1, $2, $3, true, $4)", a.cfg.Queue, name, string(body), attrs.URLEncode())
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if res.Code > 200 {
			a.log.Warn("skipping execution: already applied", "file", name)
			continue
		}
		if err := runScript(ctx, tx, attrs, string(body), tables, seqs); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if _, err := call(ctx, tx, a.log, "select * from londiste.execute_finish($1, $2)", a.cfg.Queue, name); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		a.log.Info("executed", "file", name)
	}
	return tx.Commit(ctx)
}

// runScript runs a script's statements if its attributes say this node
// needs them, with @table@ names made local.
func runScript(ctx context.Context, tx pgx.Tx, attrs *ExecAttrs, sql string, tables map[string]string, seqs map[string]bool) error {
	need, err := attrs.needExecute(ctx, tx, tables, seqs)
	if err != nil || !need {
		return err
	}
	xsql, err := attrs.processSQL(sql, tables, seqs)
	if err != nil {
		return err
	}
	// the simple protocol: the script may hold several statements
	_, err = tx.Conn().PgConn().Exec(ctx, xsql).ReadAll()
	return err
}

// execute applies an EXECUTE event on a leaf, inside the batch's
// transaction: the DDL lands at the same queue position as on the root.
func (r *runner) execute(ctx context.Context, tx pgx.Tx, ev *pgq.Event, tables []Table) error {
	w := r.w
	if err := r.ap.flush(ctx); err != nil {
		return err
	}
	name := ev.Extra1
	attrs, err := parseExecAttrsURL(ev.Extra2)
	if err != nil {
		return fmt.Errorf("EXECUTE %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, "select londiste.set_session_replication_role('local', true)"); err != nil {
		return err
	}
	tmap := map[string]string{}
	for _, t := range tables {
		if t.Local {
			tmap[t.Name] = t.Dest()
		}
	}
	_, seqs, err := localMaps(ctx, tx, w.conf().Queue)
	if err != nil {
		return err
	}
	var extra any
	if ev.Extra2 != "" {
		extra = ev.Extra2
	}
	res, err := call(ctx, tx, w.log, "select * from londiste.execute_start($1, $2, $3, false, $4)", w.conf().Queue, name, ev.Data, extra)
	if err != nil {
		return fmt.Errorf("EXECUTE %s: %w", name, err)
	}
	if res.Code > 200 {
		w.log.Warn("skipping EXECUTE: already applied", "file", name)
	} else {
		if err := runScript(ctx, tx, attrs, ev.Data, tmap, seqs); err != nil {
			return fmt.Errorf("EXECUTE %s: %w", name, err)
		}
		if _, err := call(ctx, tx, w.log, "select * from londiste.execute_finish($1, $2)", w.conf().Queue, name); err != nil {
			return fmt.Errorf("EXECUTE %s: %w", name, err)
		}
		w.log.Info("EXECUTE applied", "file", name)
	}
	// the table definitions may have changed: what the applier knows of
	// them is read again (statement texts come from the events, and pgx
	// re-prepares a statement whose result changed)
	if err := r.ap.forget(ctx); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "select londiste.set_session_replication_role('replica', true)")
	return err
}
