package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Schema21 is where Adopt21 keeps londiste 2.1's tables: it renames the
// schema londiste to it, because londiste3's schema (pgqgo's) has the
// same name.
const Schema21 = "londiste21"

// Adopt21Options is what Adopt21 needs besides the node's config.
type Adopt21Options struct {
	// Name and Location are this node's, as for create-root/create-leaf
	// (default: node_name, public_node_location).
	Name, Location string
	// Provider is a subscriber's provider (its 2.1 provider, adopted
	// first); default: initial_provider_location.
	Provider string
	// OldJob is the londiste 2.1 job whose position a subscriber takes
	// over (default: the only job in londiste 2.1's completed table).
	OldJob string
	// DryRun reports the plan and changes nothing.
	DryRun bool
}

// table21 is a table in londiste 2.1's registry.
type table21 struct {
	name, trigger, state string
	skipTruncate         bool
}

// Adopt21 moves a londiste 2.1 node of the config's queue onto pgqgo
// londiste in place, after `pgqgo upgrade` has taken PgQ 2.1 over: nothing
// is copied again and no event is lost. On a provider (2.1's
// provider_table lists tables of the queue) it makes the root node and,
// per table, replaces 2.1's logtriga trigger with londiste3's in one
// transaction; on a subscriber (subscriber_table) it makes a leaf of the
// given provider, registers the tables 2.1 had in sync as in sync and the
// others to be copied, and continues from the tick 2.1's replay completed
// (its completed table): the worker's position on the provider is set there
// before the 2.1 job is unregistered, so the events in between stay.
// Londiste 2.1's schema is renamed to Schema21 and kept, rows intact.
// It returns the steps, done or (DryRun) to be done.
func (a *Admin) Adopt21(ctx context.Context, opts Adopt21Options) ([]string, error) {
	where, err := a.schema21(ctx)
	if err != nil {
		return nil, err
	}
	if err := a.refusePgQ21(ctx); err != nil {
		return nil, err
	}
	q := func(t string) string { return pgx.Identifier{where, t}.Sanitize() }
	provided, err := a.tables21(ctx, "SELECT table_name, coalesce(trigger_name, ''), '', false FROM "+q("provider_table")+
		" WHERE queue_name = $1 ORDER BY nr")
	if err != nil {
		return nil, err
	}
	subscribed, err := a.tables21(ctx, "SELECT table_name, '', coalesce(merge_state, ''), coalesce(skip_truncate, false) FROM "+
		q("subscriber_table")+" WHERE queue_name = $1 ORDER BY nr")
	if err != nil {
		return nil, err
	}
	switch {
	case len(provided) > 0 && len(subscribed) > 0:
		return nil, fmt.Errorf("londiste 2.1 both provides and subscribes to queue %s here: adopt one role at a time is not possible", a.cfg.Queue)
	case len(provided) == 0 && len(subscribed) == 0:
		return nil, fmt.Errorf("londiste 2.1 has no tables of queue %s here (%s.provider_table, %s.subscriber_table)", a.cfg.Queue, where, where)
	}
	// what a subscriber continues from, checked before anything changes
	var job string
	var tick int64
	if len(subscribed) > 0 {
		if job, tick, err = a.position21(ctx, where, opts.OldJob); err != nil {
			return nil, err
		}
	}
	var steps []string
	step := func(desc string, run func() error) error {
		steps = append(steps, desc)
		if opts.DryRun {
			return nil
		}
		if err := run(); err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		a.log.Info("adopt-21: " + desc)
		return nil
	}
	if where == "londiste" {
		err := step("rename londiste 2.1's schema londiste to "+Schema21+" (kept, rows intact)", func() error {
			_, err := a.db.Exec(ctx, "ALTER SCHEMA londiste RENAME TO "+pgx.Identifier{Schema21}.Sanitize())
			return err
		})
		if err != nil {
			return steps, err
		}
		if !opts.DryRun {
			where = Schema21
		}
	}
	n := &NodeInfo{}
	if opts.DryRun {
		if known, err := nodeInfo(ctx, a.db, a.cfg.Queue); err == nil {
			n = known // else no pgq_node yet: no node
		}
	} else {
		if err := ensureSchemas(ctx, a.db, a.log); err != nil {
			return steps, err
		}
		if n, err = nodeInfo(ctx, a.db, a.cfg.Queue); err != nil {
			return steps, err
		}
	}
	if len(provided) > 0 {
		return steps, a.adopt21Root(ctx, opts, n, provided, where, step)
	}
	return steps, a.adopt21Leaf(ctx, opts, n, subscribed, where, job, tick, step)
}

func (a *Admin) adopt21Root(ctx context.Context, opts Adopt21Options, n *NodeInfo, tables []table21, where string,
	step func(string, func() error) error) error {
	if !n.Exists {
		if err := step("create the root node of queue "+a.cfg.Queue, func() error { return a.CreateRoot(ctx, opts.Name, opts.Location) }); err != nil {
			return err
		}
	} else if n.Type != "root" {
		return fmt.Errorf("this database is already a %s node of queue %s, and londiste 2.1 provides the queue from here", n.Type, a.cfg.Queue)
	}
	for _, t := range tables {
		desc := "replicate " + t.name + ": londiste3's trigger replaces 2.1's " + t.trigger + " in one transaction"
		if t.trigger == "" {
			desc = "replicate " + t.name
		}
		err := step(desc, func() error {
			_, err := a.AddTable(ctx, AddTableOptions{replaceTrigger: t.trigger}, t.name)
			return err
		})
		if err != nil {
			return err
		}
	}
	return a.adopt21Seqs(ctx, where, "provider_seq", step)
}

func (a *Admin) adopt21Leaf(ctx context.Context, opts Adopt21Options, n *NodeInfo, tables []table21, where, job string, tick int64,
	step func(string, func() error) error) error {
	if n.Exists && n.Type != "leaf" {
		return fmt.Errorf("this database is already a %s node of queue %s", n.Type, a.cfg.Queue)
	}
	provider := opts.Provider
	if provider == "" {
		provider = a.cfg.InitialProviderLocation
	}
	if provider == "" && !n.Exists {
		return errors.New("the provider's connect string is needed: --provider or initial_provider_location")
	}
	if !n.Exists {
		if err := step("create the leaf node of queue "+a.cfg.Queue+" under the provider", func() error {
			return a.CreateLeaf(ctx, opts.Name, opts.Location, provider)
		}); err != nil {
			return err
		}
	}
	var inSync, toCopy, toCopySkipTruncate []string
	for _, t := range tables {
		switch {
		case t.state == "ok":
			inSync = append(inSync, t.name)
		case t.skipTruncate:
			toCopySkipTruncate = append(toCopySkipTruncate, t.name)
		default:
			toCopy = append(toCopy, t.name)
		}
	}
	if len(inSync) > 0 {
		if err := step("register the tables 2.1 had in sync as in sync (no copy): "+strings.Join(inSync, ", "), func() error {
			_, err := a.AddTable(ctx, AddTableOptions{ExpectSync: true}, inSync...)
			return err
		}); err != nil {
			return err
		}
	}
	for _, set := range []struct {
		names []string
		skip  bool
	}{{toCopy, false}, {toCopySkipTruncate, true}} {
		if len(set.names) == 0 {
			continue
		}
		desc := "register the tables 2.1 had not in sync, to be copied by the worker: " + strings.Join(set.names, ", ")
		if set.skip {
			desc += " (skip_truncate kept)"
		}
		if err := step(desc, func() error {
			_, err := a.AddTable(ctx, AddTableOptions{SkipTruncate: set.skip}, set.names...)
			return err
		}); err != nil {
			return err
		}
	}
	if err := a.adopt21Seqs(ctx, where, "subscriber_seq", step); err != nil {
		return err
	}
	desc := fmt.Sprintf("continue from tick %d, where londiste 2.1's job %s completed: this node's completed tick and the worker's "+
		"position on the provider, then unregister %s from the provider's queue", tick, job, job)
	return step(desc, func() error { return a.takePosition21(ctx, job, tick) })
}

// takePosition21 sets the worker's position to tick on both sides, then
// drops the 2.1 job's registration on the provider (in that order, so the
// provider keeps the events past tick).
func (a *Admin) takePosition21(ctx context.Context, job string, tick int64) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	prov, err := a.provider(ctx, n)
	if err != nil {
		return err
	}
	defer prov.Close(ctx)
	var have bool
	if err := prov.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgq.tick t JOIN pgq.queue q ON q.queue_id = t.tick_queue
	    WHERE q.queue_name = $1 AND t.tick_id = $2)`, a.cfg.Queue, tick).Scan(&have); err != nil {
		return err
	}
	if !have {
		return fmt.Errorf("the provider no longer has tick %d of queue %s (was %s unregistered there?): the events after it are gone; "+
			"resync the tables instead", tick, a.cfg.Queue, job)
	}
	if _, err := call(ctx, a.db, a.log, "SELECT * FROM pgq_node.set_consumer_completed($1, $2, $3)", a.cfg.Queue, a.cfg.Consumer, tick); err != nil {
		return err
	}
	if _, err := prov.Exec(ctx, "SELECT pgq.register_consumer_at($1, $2, $3)", a.cfg.Queue, a.cfg.Consumer, tick); err != nil {
		return err
	}
	if job == a.cfg.Consumer {
		return nil
	}
	var registered bool
	if err := prov.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pgq.get_consumer_info($1) WHERE consumer_name = $2)`,
		a.cfg.Queue, job).Scan(&registered); err != nil {
		return err
	}
	if registered {
		if _, err := prov.Exec(ctx, "SELECT pgq.unregister_consumer($1, $2)", a.cfg.Queue, job); err != nil {
			return err
		}
	}
	return nil
}

// position21 is the job and the tick londiste 2.1's replay completed here.
func (a *Admin) position21(ctx context.Context, where, job string) (string, int64, error) {
	rows, err := a.db.Query(ctx, "SELECT consumer_id, last_tick_id FROM "+pgx.Identifier{where, "completed"}.Sanitize()+" ORDER BY 1")
	if err != nil {
		return "", 0, fmt.Errorf("read londiste 2.1's completed table: %w", err)
	}
	type done struct {
		job  string
		tick int64
	}
	all, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (done, error) {
		var d done
		return d, r.Scan(&d.job, &d.tick)
	})
	if err != nil {
		return "", 0, fmt.Errorf("read londiste 2.1's completed table: %w", err)
	}
	var names []string
	for _, d := range all {
		if d.job == job || (job == "" && len(all) == 1) {
			return d.job, d.tick, nil
		}
		names = append(names, d.job)
	}
	switch {
	case len(all) == 0:
		return "", 0, errors.New("londiste 2.1's replay never completed a batch here (its completed table is empty): " +
			"nothing to continue from; create the leaf and add the tables with a copy instead")
	case job == "":
		return "", 0, fmt.Errorf("londiste 2.1's completed table has several jobs (%s): name the one to continue with --old-job",
			strings.Join(names, ", "))
	}
	return "", 0, fmt.Errorf("no londiste 2.1 job %q here (the completed table has %s)", job, strings.Join(names, ", "))
}

func (a *Admin) adopt21Seqs(ctx context.Context, where, table string, step func(string, func() error) error) error {
	rows, err := a.db.Query(ctx, "SELECT seq_name FROM "+pgx.Identifier{where, table}.Sanitize()+" WHERE queue_name = $1 ORDER BY nr", a.cfg.Queue)
	if err != nil {
		return fmt.Errorf("read londiste 2.1's %s: %w", table, err)
	}
	seqs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(seqs) == 0 {
		return err
	}
	return step("replicate the sequences "+strings.Join(seqs, ", "), func() error { return a.AddSeq(ctx, false, seqs...) })
}

func (a *Admin) tables21(ctx context.Context, sql string) ([]table21, error) {
	rows, err := a.db.Query(ctx, sql, a.cfg.Queue)
	if err != nil {
		return nil, fmt.Errorf("read londiste 2.1's tables: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (table21, error) {
		var t table21
		return t, r.Scan(&t.name, &t.trigger, &t.state, &t.skipTruncate)
	})
}

// schema21 finds londiste 2.1's tables: in londiste (not adopted yet) or
// in Schema21 (renamed by an earlier, interrupted run).
func (a *Admin) schema21(ctx context.Context) (string, error) {
	for _, s := range []string{"londiste", Schema21} {
		var is21 bool
		err := a.db.QueryRow(ctx, `SELECT to_regclass(quote_ident($1) || '.completed') IS NOT NULL
		    AND to_regclass(quote_ident($1) || '.provider_table') IS NOT NULL
		    AND to_regclass(quote_ident($1) || '.subscriber_table') IS NOT NULL
		    AND to_regclass(quote_ident($1) || '.table_info') IS NULL`, s).Scan(&is21)
		if err != nil {
			return "", err
		}
		if is21 {
			return s, nil
		}
	}
	return "", errors.New("no londiste 2.1 here: the schema londiste (or " + Schema21 +
		") with 2.1's tables provider_table, subscriber_table and completed, and no table_info")
}

// refusePgQ21 stops the adoption while pgq is still PgQ 2.1's.
func (a *Admin) refusePgQ21(ctx context.Context) error {
	var has bool
	if err := a.db.QueryRow(ctx, `SELECT to_regprocedure('pgq.version()') IS NOT NULL`).Scan(&has); err != nil || !has {
		return err
	}
	var version string
	if err := a.db.QueryRow(ctx, `SELECT pgq.version()`).Scan(&version); err != nil {
		return fmt.Errorf("read pgq.version(): %w", err)
	}
	if strings.HasPrefix(version, "2.") {
		return fmt.Errorf("pgq here is PgQ %s: run `pgqgo upgrade` first (it takes PgQ 2.1 over and keeps londiste 2.1's triggers working)", version)
	}
	return nil
}
