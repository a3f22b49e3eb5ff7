package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/pgq"
)

// Worker is the replication daemon of one node (londiste3 worker): on a
// leaf it applies the provider's batches to the local tables and copies
// new tables; on the root it publishes sequences and the global watermark.
type Worker struct {
	cfg atomic.Pointer[Config] // swapped by Reload
	// reloaded is set by Reload: the watcher restarts the main consumer
	// with the new settings
	reloaded atomic.Bool
	log      *slog.Logger
	m        *Metrics

	mu     sync.Mutex
	copies map[string]context.CancelFunc // running copy goroutines by table
	wg     sync.WaitGroup
	wake   chan struct{} // closed (and replaced) when a table state changes here
	// filterUntil is, per table seen ok with a copy snapshot still
	// attached, the tick after which every tick sees all the snapshot
	// sees: the snapshot is dropped once the main worker passed it
	filterUntil map[string]int64
	// quick lists the small tables the main worker copies in its batch
	// (quickcopy.go); noQuick those that failed to, given the normal copy
	quick, noQuick map[string]bool
	node           *NodeInfo // this node, as read at start-up
	// realGlobalWM is the last global watermark the root sent, on a
	// branch that syncs its watermark with other nodes instead
	realGlobalWM atomic.Int64
}

// NewWorker makes the worker of the node in cfg.
func NewWorker(cfg *Config, log *slog.Logger, m *Metrics) *Worker {
	if log == nil {
		log = slog.Default()
	}
	if m == nil {
		m = NewMetrics(nil)
	}
	w := &Worker{log: log.With("queue", cfg.Queue, "worker", cfg.Consumer), m: m,
		copies: map[string]context.CancelFunc{}, wake: make(chan struct{}), filterUntil: map[string]int64{},
		quick: map[string]bool{}, noQuick: map[string]bool{}}
	w.cfg.Store(cfg)
	return w
}

// conf is the worker's configuration as last (re)loaded.
func (w *Worker) conf() *Config { return w.cfg.Load() }

// Reload takes a re-read configuration (SIGHUP, londiste3's reload): the
// keys a running worker can change (loop_delay, parallel_copies,
// threaded_copy_*, lock_timeout, exception_sleep, pgq_lazy_fetch,
// pgq_keep_lag, local_only*, watermark periods, register_*, trusted_roles,
// ...) apply from the next loop, the main consumer being restarted with
// them. A change of a key that names what the worker is (db, queue_name,
// job_name/consumer_name, pidfile, logfile, metrics_addr) is refused,
// the running configuration kept: those need a restart.
func (w *Worker) Reload(cfg *Config) error {
	old := w.conf()
	var fixed []string
	for _, k := range []struct {
		name     string
		was, now string
	}{{"db", old.DB, cfg.DB}, {"queue_name", old.Queue, cfg.Queue}, {"consumer_name", old.Consumer, cfg.Consumer},
		{"pidfile", old.PidFile, cfg.PidFile}, {"logfile", old.LogFile, cfg.LogFile}, {"metrics_addr", old.MetricsAddr, cfg.MetricsAddr}} {
		if k.was != k.now {
			fixed = append(fixed, k.name)
		}
	}
	if len(fixed) > 0 {
		return fmt.Errorf("reload: %s changed; restart the worker for that (configuration unchanged)", strings.Join(fixed, ", "))
	}
	w.cfg.Store(cfg)
	w.reloaded.Store(true)
	w.notify()
	return nil
}

// errFatal marks errors a retry cannot fix.
type errFatal struct{ error }

func (e errFatal) Unwrap() error { return e.error }

// Run works until ctx ends, reconnecting and retrying after errors
// (exception_sleep between attempts, shorter at first).
func (w *Worker) Run(ctx context.Context) error {
	backoff := min(time.Second, w.conf().ExceptionSleep)
	defer w.wg.Wait()
	for {
		err := w.runOnce(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, errNodeChanged) {
			continue
		}
		var fatal errFatal
		if errors.As(err, &fatal) {
			return err
		}
		w.log.Error("worker failed; retrying", "err", err, "in", backoff)
		if w.waitOrStateChange(ctx, backoff) {
			backoff = min(time.Second, w.conf().ExceptionSleep) // told to do something else: at once
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		backoff = min(2*backoff, max(w.conf().ExceptionSleep, time.Second))
	}
}

// waitOrStateChange waits d, or less when an admin command changes the
// worker's state meanwhile (a pause, a new provider: uptodate is cleared),
// which it reports: a worker failing against a dead provider must still
// acknowledge the pause and the move that takeovers make (londiste3 does
// only after its exception sleep).
func (w *Worker) waitOrStateChange(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	db, err := connect(ctx, w.conf().DB)
	if err != nil {
		select {
		case <-ctx.Done():
		case <-time.After(time.Until(deadline)):
		}
		return false
	}
	defer db.Close(context.Background())
	for {
		if st, err := getConsumerState(ctx, db, w.conf().Queue, w.conf().Consumer); err == nil && !st.uptodate {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(min(left, max(w.conf().LoopDelay, 10*time.Millisecond))):
		}
	}
}

func (w *Worker) runOnce(ctx context.Context) error {
	db, err := connect(ctx, w.conf().DB)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	if err := w.checkTrust(ctx, db, "this node"); err != nil {
		return err
	}
	n, err := nodeInfo(ctx, db, w.conf().Queue)
	if err != nil {
		return err
	}
	if !n.Exists {
		return errFatal{fmt.Errorf("queue %s: %w", w.conf().Queue, ErrNoNode)}
	}
	if n.WorkerName != w.conf().Consumer {
		return errFatal{fmt.Errorf("this node's worker is %q, the config's consumer_name/job_name is %q", n.WorkerName, w.conf().Consumer)}
	}
	w.node = n
	switch n.Type {
	case "root":
		return w.runRoot(ctx, db)
	case "leaf", "branch":
		if n.CombinedQueue != "" {
			return errFatal{errors.New("merge leaves (combined queues) are not supported by pgqgo londiste yet")}
		}
		return w.runLeaf(ctx, db)
	default:
		return errFatal{fmt.Errorf("%s nodes are not supported by pgqgo londiste (root, branch and leaf are)", n.Type)}
	}
}

// consumerState is pgq_node.get_consumer_state.
type consumerState struct {
	completed        int64
	providerNode     string
	providerLocation string
	paused, uptodate bool
	curError         string
}

func getConsumerState(ctx context.Context, db queryer, queue, consumer string) (*consumerState, error) {
	var s consumerState
	var code int32
	var note string
	var completed *int64
	var pnode, ploc, cerr *string
	var paused, uptodate *bool
	err := db.QueryRow(ctx, `select ret_code, ret_note, completed_tick, provider_node, provider_location, paused, uptodate, cur_error
	   from pgq_node.get_consumer_state($1, $2)`, queue, consumer).Scan(&code, &note, &completed, &pnode, &ploc, &paused, &uptodate, &cerr)
	if err != nil {
		return nil, fmt.Errorf("pgq_node.get_consumer_state: %w", err)
	}
	if code >= 300 {
		return nil, fmt.Errorf("pgq_node.get_consumer_state(%s): %d %s", consumer, code, note)
	}
	if completed != nil {
		s.completed = *completed
	}
	if pnode != nil {
		s.providerNode = *pnode
	}
	if ploc != nil {
		s.providerLocation = *ploc
	}
	if cerr != nil {
		s.curError = *cerr
	}
	s.paused = paused != nil && *paused
	s.uptodate = uptodate != nil && *uptodate
	return &s, nil
}

// runRoot: the root consumes nothing; it acknowledges pauses, publishes
// sequence values (londiste.root_check_seqs every 10 loop delays, as
// londiste3) and the global watermark, until the node is no longer the
// root (a takeover demoted it).
func (w *Worker) runRoot(ctx context.Context, db *pgx.Conn) error {
	w.log.Info("root worker running", "node", w.node.Name)
	w.m.setNode(w.conf().Queue, w.node.Name, "root", "")
	var lastWM, lastSeqs time.Time
	for {
		if err := w.sameNodeType(ctx, db); err != nil {
			return err
		}
		st, err := getConsumerState(ctx, db, w.conf().Queue, w.conf().Consumer)
		if err != nil {
			return err
		}
		if !st.uptodate {
			if _, err := call(ctx, db, w.log, "select * from pgq_node.set_consumer_uptodate($1, $2, true)", w.conf().Queue, w.conf().Consumer); err != nil {
				return err
			}
		}
		if !st.paused && time.Since(lastSeqs) >= 10*w.conf().LoopDelay {
			if _, err := call(ctx, db, w.log, "select * from londiste.root_check_seqs($1)", w.conf().Queue); err != nil {
				return fmt.Errorf("root_check_seqs: %w", err)
			}
			lastSeqs = time.Now()
		}
		if !st.paused && time.Since(lastWM) >= w.conf().GlobalWMPublishPeriod {
			if _, err := call(ctx, db, w.log, "select * from pgq_node.set_global_watermark($1, null)", w.conf().Queue); err != nil {
				return fmt.Errorf("set_global_watermark: %w", err)
			}
			lastWM = time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.conf().LoopDelay):
		}
	}
}

// errNodeChanged ends a worker's run when its node changed type (a
// takeover): the worker starts again as what the node now is.
var errNodeChanged = errors.New("this node changed type")

// sameNodeType fails with errNodeChanged when the node is no longer of the
// type the worker started as.
func (w *Worker) sameNodeType(ctx context.Context, db *pgx.Conn) error {
	n, err := nodeInfo(ctx, db, w.conf().Queue)
	if err != nil {
		return err
	}
	if n.Type != w.node.Type {
		w.log.Info("this node is now a "+n.Type+": starting again", "was", w.node.Type)
		return errNodeChanged
	}
	return nil
}

// providerDSN is a provider location plus remote_extra_connstr.
func (w *Worker) providerDSN(loc string) string {
	if w.conf().RemoteExtraConnstr != "" {
		return loc + " " + w.conf().RemoteExtraConnstr
	}
	return loc
}

// runLeaf runs the main consumer of a leaf or a branch against the
// provider until a pause or a provider change, then starts again.
func (w *Worker) runLeaf(ctx context.Context, db *pgx.Conn) error {
	w.log.Info(w.node.Type+" worker running", "node", w.node.Name)
	for {
		if err := w.sameNodeType(ctx, db); err != nil {
			return err
		}
		st, err := getConsumerState(ctx, db, w.conf().Queue, w.conf().Consumer)
		if err != nil {
			return err
		}
		if !st.uptodate {
			if _, err := call(ctx, db, w.log, "select * from pgq_node.set_consumer_uptodate($1, $2, true)", w.conf().Queue, w.conf().Consumer); err != nil {
				return err
			}
		}
		if st.paused {
			w.m.paused.Set(1)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(w.conf().LoopDelay):
			}
			continue
		}
		w.m.paused.Set(0)
		w.m.setNode(w.conf().Queue, w.node.Name, w.node.Type, st.providerNode)
		if st.providerLocation == "" {
			return fmt.Errorf("provider %q has no location", st.providerNode)
		}
		backlog, err := w.checkProvider(ctx, st)
		if err != nil {
			return err
		}
		runCtx, cancel := context.WithCancelCause(ctx)
		watchDone := make(chan error, 1)
		go func() { watchDone <- w.watch(runCtx, cancel, st) }()
		err = w.runMain(runCtx, st, backlog)
		cancel(nil)
		werr := <-watchDone
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(context.Cause(runCtx), errStateChanged) {
			continue
		}
		if err == nil || errors.Is(err, context.Canceled) {
			err = werr
		}
		if err == nil {
			err = context.Cause(runCtx)
		}
		return err
	}
}

var errStateChanged = errors.New("consumer state changed")

// trustCheckPeriod is how often a running worker checks the owners of the
// schemas it calls again.
const trustCheckPeriod = time.Minute

// checkTrust refuses to work on a database whose pgq, pgq_node or londiste
// schema holds anything owned by a role the worker does not trust (its
// own, a superuser, trusted_roles): the worker calls their functions, and
// often with more rights than their owners have.
func (w *Worker) checkTrust(ctx context.Context, db *pgx.Conn, where string) error {
	for _, schema := range []string{"pgq", "pgq_node", "londiste"} {
		if err := pgq.CheckSchemaTrust(ctx, db, schema, w.conf().TrustedRoles); err != nil {
			w.m.errors.Inc()
			return fmt.Errorf("%s: refusing to call its functions (see trusted_roles): %w", where, err)
		}
	}
	return nil
}

// checkProvider checks the owners of the provider's schemas (checkTrust)
// and returns the main consumer's backlog there: the time its position's
// tick is behind the queue's last tick, which sizes the first batch as the
// following ones are sized from their lag (collect). Zero when it is not
// registered there (yet).
func (w *Worker) checkProvider(ctx context.Context, st *consumerState) (time.Duration, error) {
	prov, err := connect(ctx, w.providerDSN(st.providerLocation))
	if err != nil {
		return 0, fmt.Errorf("provider %s: %w", st.providerNode, err)
	}
	defer prov.Close(context.Background())
	if err := w.checkTrust(ctx, prov, "provider "+st.providerNode); err != nil {
		return 0, err
	}
	var backlog time.Duration
	err = prov.QueryRow(ctx, `select coalesce(c.lag - q.ticker_lag, '0') from pgq.get_consumer_info($1, $2) c, pgq.get_queue_info($1) q`,
		w.conf().Queue, w.conf().Consumer).Scan(&backlog)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("provider %s: the worker's lag: %w", st.providerNode, err)
	}
	return backlog, nil
}

// runMain runs the main consumer on the provider; backlog seeds the size
// of its first batch (checkProvider).
func (w *Worker) runMain(ctx context.Context, st *consumerState, backlog time.Duration) error {
	target, err := connect(ctx, w.conf().DB)
	if err != nil {
		return err
	}
	defer target.Close(context.Background())
	r := &runner{w: w, name: w.conf().Consumer, db: target, ap: newApplier(), providerNode: st.providerNode, providerLoc: st.providerLocation,
		branch: w.node.Type == "branch"}
	defer func() {
		if r.prov != nil {
			r.prov.Close(context.Background())
		}
	}()
	tables, err := tableList(ctx, target, w.conf().Queue)
	if err != nil {
		return err
	}
	r.backlog.Store(int64(backlog))
	r.copying.Store(anyCopying(tables))
	cfg := w.consumerConfig(w.conf().Consumer)
	cfg.Collect = r.collect
	if w.conf().LocalOnly {
		cfg.Filter = r.localOnly
	}
	c, err := pgq.NewConsumer(w.providerDSN(st.providerLocation), cfg)
	if err != nil {
		return err
	}
	return c.Run(ctx, pgq.BatchFunc(r.batch))
}

// collect sizes the main worker's next batch: while the backlog behind
// the last batch spans lagCollect or more (the last batch's lag less the
// provider's ticker lag) and no table is being copied (a copy's hand-off
// needs batches that end where the copy stands), a batch spans nine tenths
// of that backlog (at most 30 s of ticks) or collectEvents events, so the
// per-batch costs (two commits, a round trip per table) are paid once per
// thousands of events instead of once per tick. Keeping up: any tick.
//
// An estimate sizes one opening: the next asks for any tick unless a batch
// applied meanwhile has measured the backlog again. An estimate too big
// (the first one is taken from the provider's position, which the worker
// may then move forward: catchUpProvider) would otherwise ask for a span
// of ticks that does not exist until the next idle tick.
func (r *runner) collect() (int, time.Duration) {
	backlog := time.Duration(r.backlog.Swap(0))
	if r.copying.Load() || backlog < lagCollect {
		return 0, 0
	}
	return collectEvents, min(backlog*9/10, 30*time.Second)
}

// anyCopying tells whether some table this node replicates is not ok
// (being copied, or waiting to be).
func anyCopying(tables []Table) bool {
	for _, t := range tables {
		if t.Local && t.MergeState != "ok" && t.MergeState != "?" {
			return true
		}
	}
	return false
}

// localOnly is the main worker's server-side event filter with
// local_only: the events of the tables this node replicates (in any
// state: a table can become ok within the batch), control events, and
// EXECUTE unless local_only_drop_execute.
func (r *runner) localOnly(ctx context.Context) (string, error) {
	tables, err := tableList(ctx, r.db, r.w.conf().Queue)
	if err != nil {
		return "", err
	}
	var names []string
	for _, t := range tables {
		if t.Local {
			names = append(names, quoteLiteral(t.Name))
		}
	}
	f := "ev_type like 'pgq.%' or ev_type like 'londiste.%'"
	if !r.w.conf().LocalOnlyDropExecute {
		f += " or ev_type = 'EXECUTE'"
	}
	if len(names) > 0 {
		f += " or ev_extra1 in (" + strings.Join(names, ", ") + ")"
	}
	return f, nil
}

// bigBatch is the size from which a batch's timing is logged.
const bigBatch = 10000

const (
	lagCollect    = 2 * time.Second
	collectEvents = 100000
)

func (w *Worker) consumerConfig(name string) pgq.ConsumerConfig {
	fetch := w.conf().FetchSize
	if fetch <= 0 {
		fetch = 10000
	}
	return pgq.ConsumerConfig{
		Queue: w.conf().Queue, Name: name, NoRegister: true, FetchSize: max(fetch, 10000),
		// the batch opens durably: its end tick is then on the provider's
		// disk before this node records it as completed (the daemon
		// commits ticks without waiting for the WAL flush; a crash of the
		// provider could otherwise lose a tick this node, or a branch's
		// subscribers, already stand on)
		StableBatchIDs: true,
		MinLag:         w.conf().MinLag,
		PollInterval:   max(w.conf().LoopDelay, 10*time.Millisecond),
		ErrorBackoff:   min(time.Second, max(w.conf().ExceptionSleep, 10*time.Millisecond)),
		MaxBackoff:     max(w.conf().ExceptionSleep, time.Second), Logger: w.log,
	}
}

// watch runs beside the main consumer: it acknowledges state changes, ends
// the consumer on a pause or provider change, starts and resumes copies,
// restores foreign keys and publishes the local watermark.
func (w *Worker) watch(ctx context.Context, stop context.CancelCauseFunc, st *consumerState) error {
	db, err := connect(ctx, w.conf().DB)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	prov, err := connect(ctx, w.providerDSN(st.providerLocation))
	if err != nil {
		return fmt.Errorf("provider %s: %w", st.providerNode, err)
	}
	defer prov.Close(context.Background())
	if err := w.cleanCopyConsumers(ctx, db, prov); err != nil {
		w.log.Warn("cleaning leftover copy consumers", "err", err)
	}
	var lastWM time.Time
	lastTrust := time.Now()
	for {
		// a server restarted: start again with new sessions (the consumer
		// reconnects by itself, but copies and watermarks use these)
		if prov.IsClosed() || db.IsClosed() {
			err := fmt.Errorf("lost the session to the provider %s or to this node", st.providerNode)
			stop(err)
			return err
		}
		if time.Since(lastTrust) >= trustCheckPeriod {
			// the schemas' owners, again (they were checked at the start)
			for _, c := range []struct {
				db    *pgx.Conn
				where string
			}{{db, "this node"}, {prov, "provider " + st.providerNode}} {
				if err := w.checkTrust(ctx, c.db, c.where); err != nil {
					stop(err)
					return err
				}
			}
			lastTrust = time.Now()
		}
		cur, err := getConsumerState(ctx, db, w.conf().Queue, w.conf().Consumer)
		if err != nil {
			stop(err)
			return err
		}
		if cur.paused || !cur.uptodate || cur.providerLocation != st.providerLocation || w.reloaded.Swap(false) {
			stop(errStateChanged)
			return nil
		}
		if err := w.nudgeHandOffs(ctx, db, prov, cur.completed); err != nil {
			w.log.Warn("forcing a tick for a hand-off", "err", err)
		}
		if err := w.startCopies(ctx, db, prov, st); err != nil {
			w.log.Warn("table sync", "err", err)
		}
		if err := w.restoreFkeys(ctx, db); err != nil {
			w.log.Warn("restoring foreign keys", "err", err)
		}
		if time.Since(lastWM) >= w.conf().LocalWMPublishPeriod && cur.completed > 0 {
			if err := w.publishWatermarks(ctx, db, prov, cur.completed); err != nil {
				w.log.Warn("publishing the local watermark", "err", err)
			} else {
				lastWM = time.Now()
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-w.changed():
		case <-time.After(w.conf().LoopDelay):
		}
	}
}

// notify wakes everything waiting for a table state change.
func (w *Worker) notify() {
	w.mu.Lock()
	close(w.wake)
	w.wake = make(chan struct{})
	w.mu.Unlock()
}

// changed returns a channel closed at the next notify.
func (w *Worker) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.wake
}

// nudgeHandOffs forces a tick on the provider when a copy waits in
// wanna-sync:T and the main worker already stands at T or past it: the
// hand-off happens at the main worker's next batch, and an idle queue would
// otherwise cut one only at its next idle tick (ticker_idle_period).
func (w *Worker) nudgeHandOffs(ctx context.Context, db, prov *pgx.Conn, completed int64) error {
	tables, err := tableList(ctx, db, w.conf().Queue)
	if err != nil {
		return err
	}
	for _, t := range tables {
		if tick, ok := stateTick(t.MergeState, "wanna-sync:"); ok && t.Local && tick <= completed {
			return tickNow(ctx, prov, w.conf().Queue, w.conf().RemoteExtraConnstr)
		}
	}
	return nil
}

// tickNow asks for a tick on the provider (pgq.force_tick, as londiste3)
// and, where this role may, cuts it at once with pgq.ticker (which on pgqgo
// also wakes the consumers waiting for it): a hand-off step then waits for
// no ticker round (an idle database is looked at every half second, pgqd
// ticks every second). A branch's ticks are its provider's: the tick is
// asked of the root (through the branch's providers; extra is
// remote_extra_connstr), and reaches the branch when its worker copies it.
func tickNow(ctx context.Context, prov *pgx.Conn, queue, extra string) error {
	var typ, up *string
	if err := prov.QueryRow(ctx, "select node_type, provider_location from pgq_node.get_node_info($1)", queue).Scan(&typ, &up); err == nil &&
		typ != nil && *typ == "branch" && up != nil {
		return tickRoot(ctx, *up, queue, extra, 32)
	}
	var ours bool
	if err := prov.QueryRow(ctx, "select pgq.force_tick($1) is not null, to_regprocedure('pgq.pgqgo_version()') is not null", queue).Scan(new(bool), &ours); err != nil {
		return err
	}
	// on pgqgo's schema, where ticks of a queue are cut one at a time; not
	// allowed (no pgq_admin rights) or busy: the ticker will do it
	if ours {
		_, _ = prov.Exec(ctx, "select pgq.ticker($1)", queue)
	}
	return nil
}

func tickRoot(ctx context.Context, location, queue, extra string, hops int) error {
	if hops == 0 {
		return errors.New("no root within 32 providers")
	}
	dsn := location
	if extra != "" {
		dsn += " " + extra
	}
	c, err := connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	var typ, up *string
	if err := c.QueryRow(ctx, "select node_type, provider_location from pgq_node.get_node_info($1)", queue).Scan(&typ, &up); err != nil {
		return err
	}
	if typ != nil && *typ == "branch" && up != nil {
		return tickRoot(ctx, *up, queue, extra, hops-1)
	}
	return tickNow(ctx, c, queue, extra)
}

// copyName is londiste3's copy consumer name for a table.
func (w *Worker) copyName(table string) string { return w.conf().Consumer + ".copy." + table }

// startCopies starts a copy for tables waiting for one (state NULL, up to
// parallel_copies at once, once the provider has the table ok) and resumes
// any copy found half-way (in-copy, catching-up, wanna-sync, do-sync) that
// no goroutine of this process runs: after a crash, or after taking over
// from londiste3.
func (w *Worker) startCopies(ctx context.Context, db, prov *pgx.Conn, st *consumerState) error {
	tables, err := tableList(ctx, db, w.conf().Queue)
	if err != nil {
		return err
	}
	w.m.observeTables(tables)
	w.mu.Lock()
	running := len(w.copies)
	w.mu.Unlock()
	var provState map[string]Table
	quickAdded := false
	for _, t := range tables {
		if !t.Local || t.MergeState == "ok" || t.MergeState == "?" {
			continue
		}
		if err := checkHandler(t); err != nil {
			w.log.Error("table not copied", "table", t.Name, "err", err)
			continue
		}
		w.mu.Lock()
		_, busy := w.copies[t.Name]
		busy = busy || w.quick[t.Name]
		w.mu.Unlock()
		if busy {
			continue
		}
		if t.MergeState == "" {
			if provState == nil {
				pts, err := tableList(ctx, prov, w.conf().Queue)
				if err != nil {
					return err
				}
				provState = map[string]Table{}
				for _, pt := range pts {
					provState[pt.Name] = pt
				}
			}
			pt, ok := provState[t.Name]
			copyNode := t.Attrs().Get("copy_node")
			if copyNode == "" || copyNode == st.providerNode {
				if !ok || !pt.Local {
					w.log.Warn("table not available on the provider", "table", t.Name)
					continue
				}
				if pt.MergeState != "ok" {
					w.log.Info("table not ok on the provider yet, waiting", "table", t.Name)
					continue
				}
			}
			quick := false
			if copyNode == "" {
				quick, err = w.quickEligible(ctx, db, prov, t, pt.Dest())
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			if quick {
				w.mu.Lock()
				w.quick[t.Name] = true
				w.mu.Unlock()
				quickAdded = true
				continue
			}
			if running >= w.conf().ParallelCopies {
				continue
			}
			if err := w.dropFkeys(ctx, db, t.Dest()); err != nil {
				return fmt.Errorf("%s: %w", t.Name, err)
			}
			if _, err := call(ctx, db, w.log, "select * from londiste.local_set_table_state($1, $2, null, 'in-copy')", w.conf().Queue, t.Name); err != nil {
				return err
			}
			t.MergeState = "in-copy"
		}
		running++
		w.launchCopy(ctx, t, st)
	}
	if quickAdded {
		// the main worker copies them at its next batch: one now
		return tickNow(ctx, prov, w.conf().Queue, w.conf().RemoteExtraConnstr)
	}
	return nil
}

// checkHandler refuses tables whose handler pgqgo does not have.
func checkHandler(t Table) error {
	h := t.Attrs().Get("handler")
	if h == "" {
		h = t.Attrs().Get("handlers")
	}
	name, _, _ := strings.Cut(h, "(")
	switch name {
	case "", "londiste":
		return nil
	case "vtable", "fake_local":
		return nil
	}
	return fmt.Errorf("handler %q is not supported by pgqgo londiste (default handler and vtable only)", h)
}

func isVirtual(t Table) bool {
	h, _, _ := strings.Cut(t.Attrs().Get("handler"), "(")
	return h == "vtable" || h == "fake_local"
}

func (w *Worker) launchCopy(ctx context.Context, t Table, st *consumerState) {
	cctx, cancel := context.WithCancel(ctx)
	w.mu.Lock()
	w.copies[t.Name] = cancel
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer func() {
			w.mu.Lock()
			delete(w.copies, t.Name)
			w.mu.Unlock()
			cancel()
			w.notify()
		}()
		log := w.log.With("table", t.Name)
		err := w.copyTable(cctx, t, st, log)
		switch {
		case err == nil:
			log.Info("table in sync")
		case cctx.Err() != nil:
		default:
			log.Error("copy failed; retried at the next loop", "err", err)
			w.setError(context.Background(), w.copyName(t.Name), err)
			select {
			case <-cctx.Done():
			case <-time.After(min(w.conf().ExceptionSleep, 5*time.Second)):
			}
		}
	}()
}

// setError reports an error in pgq_node.local_state.cur_error (shown by
// status); nil clears it.
func (w *Worker) setError(ctx context.Context, consumer string, err error) {
	db, cerr := connect(ctx, w.conf().DB)
	if cerr != nil {
		return
	}
	defer db.Close(context.Background())
	var msg any
	if err != nil {
		s := err.Error()
		if len(s) > 1000 {
			s = s[:1000]
		}
		msg = s
	}
	_, _ = db.Exec(ctx, "select * from pgq_node.set_consumer_error($1, $2, $3)", w.conf().Queue, consumer, msg)
}

// cleanCopyConsumers unregisters, on the provider and here, copy consumers
// of tables that are ok or gone (a copy that died between its last two
// steps, in pgqgo or in londiste3: they would hold back rotation).
func (w *Worker) cleanCopyConsumers(ctx context.Context, db, prov *pgx.Conn) error {
	tables, err := tableList(ctx, db, w.conf().Queue)
	if err != nil {
		return err
	}
	inFlight := map[string]bool{}
	for _, t := range tables {
		if t.Local && t.MergeState != "ok" && t.MergeState != "?" {
			inFlight[w.copyName(t.Name)] = true
		}
	}
	prefix := w.conf().Consumer + ".copy."
	rows, err := prov.Query(ctx, "select consumer_name from pgq.get_consumer_info($1) where consumer_name like $2", w.conf().Queue, likePrefix(prefix))
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, n := range names {
		if inFlight[n] {
			continue
		}
		w.log.Info("unregistering a leftover copy consumer", "consumer", n)
		if _, err := prov.Exec(ctx, "select pgq.unregister_consumer($1, $2)", w.conf().Queue, n); err != nil {
			return err
		}
		_, _ = db.Exec(ctx, "select * from pgq_node.unregister_consumer($1, $2)", w.conf().Queue, n)
	}
	return nil
}

func likePrefix(p string) string {
	return strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`).Replace(p) + "%"
}

// dropFkeys drops the foreign keys to and from a table before its copy;
// londiste keeps them in londiste.pending_fkeys until both ends are ok.
func (w *Worker) dropFkeys(ctx context.Context, db *pgx.Conn, table string) error {
	return w.eachFkey(ctx, db, "dropping foreign key for the copy",
		"select from_table, fkey_name from londiste.find_table_fkeys($1)", table, "select londiste.drop_table_fkey($1, $2)")
}

// restoreFkeys restores the pending foreign keys whose tables are both ok.
func (w *Worker) restoreFkeys(ctx context.Context, db *pgx.Conn) error {
	return w.eachFkey(ctx, db, "restoring foreign key",
		"select from_table, fkey_name from londiste.get_valid_pending_fkeys($1)", w.conf().Queue, "select londiste.restore_table_fkey($1, $2)")
}

// eachFkey runs do (from_table, fkey_name) for each foreign key list
// returns, one statement (and transaction) each.
func (w *Worker) eachFkey(ctx context.Context, db *pgx.Conn, what, list, arg, do string) error {
	rows, err := db.Query(ctx, list, arg)
	if err != nil {
		return err
	}
	type fk struct{ from, name string }
	fks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (fk, error) {
		var f fk
		return f, r.Scan(&f.from, &f.name)
	})
	if err != nil {
		return err
	}
	for _, f := range fks {
		w.log.Info(what, "table", f.from, "fkey", f.name)
		if _, err := db.Exec(ctx, do, f.from, f.name); err != nil {
			return err
		}
	}
	return nil
}

// runner applies one consumer's batches (the main worker's or a copy's) to
// the target database, exactly once: the batch's end tick is recorded with
// pgq_node.set_consumer_completed in the same target transaction.
type runner struct {
	w            *Worker
	name         string
	copyTable    string // set for a copy consumer
	db           *pgx.Conn
	ap           *applier
	providerNode string
	providerLoc  string
	errorSet     bool
	prov         *pgx.Conn    // the main worker's own provider session (quick copies)
	backlog      atomic.Int64 // time span of the ticks past the last batch (main worker)
	copying      atomic.Bool  // some local table is not ok (main worker)
	// branch: the main worker of a branch node, which also keeps a copy
	// of the provider's queue (branch.go)
	branch bool
	// ticksApart: this branch makes each tick in a transaction of its own
	// (its pgq.ticker cannot go first in the next tick's: begin)
	ticksApart bool
	// mainProviderLoc: for a copy consumer reading another node's queue
	// than the main worker's provider (copy_node), that provider.
	mainProviderLoc string
	// handing: the copy consumer's table is in wanna-sync or do-sync; its
	// batches are then one tick each, so that one ends at the hand-off
	// tick
	handing atomic.Bool
}

// isRowEvent: the event is a table's row change (or TRUNCATE), which the
// applier buffers, not a control event run on the target transaction.
func isRowEvent(ev *pgq.Event) bool {
	return ev.Type != "EXECUTE" && !strings.HasPrefix(ev.Type, "pgq.") && !strings.HasPrefix(ev.Type, "londiste.")
}

// errCopyDone ends a copy consumer: its table is ok.
var errCopyDone = errors.New("copy handed over")

// errRecopy ends a copy consumer whose table must be copied again.
var errRecopy = errors.New("copy out of step")

func (r *runner) batch(ctx context.Context, b *pgq.Batch) error {
	err := r.apply(ctx, b)
	if err != nil {
		r.ap.rolledBack()
	}
	if err != nil && !errors.Is(err, errCopyDone) && !errors.Is(err, errProviderMoved) && ctx.Err() == nil {
		r.w.setError(context.Background(), r.name, err)
		r.errorSet = true
		r.w.m.errors.Inc()
	} else if err == nil && r.errorSet {
		r.w.setError(ctx, r.name, nil)
		r.errorSet = false
	}
	return err
}

func (r *runner) apply(ctx context.Context, b *pgq.Batch) error {
	w := r.w
	st, err := getConsumerState(ctx, r.db, w.conf().Queue, r.name)
	if err != nil {
		return err
	}
	if r.copyTable == "" && st.completed > b.PrevTickID && (st.completed > b.TickID || !r.branch) && st.completed != b.TickID {
		return r.catchUpProvider(ctx, st.completed, b)
	}
	// ticks: on a branch, the provider's ticks from the batch's start to
	// its end, each to be recorded here after its events
	var ticks []tickRow
	done := b.PrevTickID // the batch's events up to this tick are here
	if r.branch {
		if ticks, err = providerTicks(ctx, b.Tx(), w.conf().Queue, b.PrevTickID, b.TickID); err != nil {
			return err
		}
		i := slices.IndexFunc(ticks, func(t tickRow) bool { return t.id == st.completed })
		if i < 0 {
			return errFatal{fmt.Errorf("lost position: batch %d is ticks %d..%d, but %s has completed tick %d on this branch",
				b.ID, b.PrevTickID, b.TickID, r.name, st.completed)}
		}
		if err := r.ensureTick(ctx, ticks[i]); err != nil {
			return err
		}
		if st.completed == b.TickID { // applied before a crash: only the provider's finish was lost
			return nil
		}
		done = st.completed
	} else {
		switch st.completed {
		case b.TickID: // applied before a crash: only the provider's finish was lost
			return nil
		case b.PrevTickID:
		default:
			if r.copyTable != "" {
				// a copy consumer out of step (its positions are kept apart,
				// one per database): the copy is simply done again
				return fmt.Errorf("%w: copy consumer %s at tick %d here, batch %d..%d on the provider",
					errRecopy, r.name, st.completed, b.PrevTickID, b.TickID)
			}
			return errFatal{fmt.Errorf("lost position: batch %d is ticks %d..%d, but %s has completed tick %d on the target",
				b.ID, b.PrevTickID, b.TickID, r.name, st.completed)}
		}
	}
	tables, err := r.sync(ctx, b)
	if err != nil {
		return err
	}
	if r.copyTable == "" {
		var head time.Duration
		if err := b.Tx().QueryRow(ctx, "select ticker_lag from pgq.get_queue_info($1)", w.conf().Queue).Scan(&head); err != nil {
			return err
		}
		r.backlog.Store(int64(b.Lag - head))
		r.copying.Store(anyCopying(tables))
	}
	var qw queueWriter // a branch's copy of the events
	tx, err := r.begin(ctx, nil, &qw)
	if err != nil {
		return err
	}
	defer func() {
		r.ap.wait() // a flush in flight has the connection
		tx.Rollback(context.Background())
	}()
	r.ap.reset(tx)
	// a leaf's main worker reads the next events while the last ones are
	// applied (a branch writes its queue on the same transaction between)
	r.ap.async = !r.branch && r.copyTable == ""
	var quick []string
	if r.copyTable == "" {
		if quick, err = r.quickCopy(ctx, tx, tables); err != nil {
			return err
		}
	}
	byName := map[string]*Table{}
	snaps := map[string]*snapshot{}
	local := map[string]bool{}
	for i := range tables {
		t := &tables[i]
		if !t.Local {
			continue
		}
		if r.copyTable == "" {
			local[t.Name] = true
		}
		if r.copyTable != "" {
			if t.Name != r.copyTable || (t.MergeState != "catching-up" && !strings.HasPrefix(t.MergeState, "do-sync")) {
				continue
			}
		} else if t.MergeState != "ok" && t.MergeState != "?" {
			continue
		}
		byName[t.Name] = t
		if t.CustomSnapshot != "" {
			s, err := parseSnapshot(t.CustomSnapshot)
			if err != nil {
				return err
			}
			snaps[t.Name] = s
		}
	}
	var events, skipped, inCopy int64
	handle := func(ev *pgq.Event) error {
		events++
		if !isRowEvent(ev) {
			// the statements below use the transaction
			if err := r.ap.wait(); err != nil {
				return err
			}
		}
		if r.branch && !strings.HasPrefix(ev.Type, "pgq.") {
			qw.add(ev)
		}
		switch {
		case strings.HasPrefix(ev.Type, "pgq."):
			if r.copyTable == "" {
				return r.cascadeEvent(ctx, tx, ev, &qw)
			}
		case strings.HasPrefix(ev.Type, "londiste."):
			if r.copyTable == "" {
				return r.londisteEvent(ctx, ev)
			}
		case ev.Type == "EXECUTE":
			if r.copyTable == "" {
				return r.execute(ctx, tx, ev, tables)
			}
		default:
			t := byName[ev.Extra1]
			if t == nil {
				if local[ev.Extra1] {
					inCopy++ // not ok yet: its copy has it, or will
				} else {
					skipped++
				}
				return nil
			}
			if s := snaps[t.Name]; s != nil && s.sees(ev.TxID) {
				inCopy++
				return nil
			}
			if isVirtual(*t) {
				return nil
			}
			if err := r.ap.row(ctx, t.Dest(), ev); err != nil {
				return fmt.Errorf("[ev_id=%d,ev_txid=%d] %s: %w", ev.ID, ev.TxID, t.Name, err)
			}
		}
		return nil
	}
	// the copy snapshot, kept while batches could hold rows the copy has:
	// until the batches start at ticks made after the snapshot
	dropSnapshots := func() error {
		if r.copyTable != "" {
			return nil
		}
		var last int64
		for name, t := range byName {
			if t.CustomSnapshot == "" {
				delete(w.filterUntil, name)
				continue
			}
			until, ok := w.filterUntil[name]
			if !ok {
				// taken before now (by a copy, or before a restart)
				if last == 0 {
					if last, err = r.providerLastTick(ctx, b); err != nil {
						return err
					}
				}
				until = last + 1
				w.filterUntil[name] = until
			}
			if b.TickID > until {
				// still ok: a resync meanwhile wins
				if _, err := w.setStateIf(ctx, tx, name, "ok", nil, "ok"); err != nil {
					return err
				}
				delete(w.filterUntil, name)
			}
		}
		return nil
	}
	// a copy consumer's batch that ends at the do-sync tick hands the
	// table over in its own commit (queueHandOff)
	var handOff *Table
	var handOffSnap string
	var handedOver bool
	if t := byName[r.copyTable]; r.copyTable != "" && t != nil {
		if tick, ok := stateTick(t.MergeState, "do-sync:"); ok && tick == b.TickID {
			handOff = t
		}
	}
	// complete ends the target transaction at tick: the events (branch,
	// by COPY), then the rows and the position in one round trip with the
	// COMMIT; then, on a branch, the tick, unless made here (ticks made in
	// the transaction: only one without events) or left for the next
	// transaction (next: begin)
	complete := func(tick tickRow, makeHere []tickRow, next bool) error {
		if err := r.ap.wait(); err != nil {
			return err
		}
		if tick.id == b.TickID {
			if err := dropSnapshots(); err != nil {
				return err
			}
		}
		if err := qw.flush(ctx, tx); err != nil {
			return err
		}
		if err := r.ap.flushThen(ctx, func(bt *pgx.Batch) {
			if tick.id != b.TickID {
				// not the batch's end: the last one's flush makes it durable
				bt.Queue("select set_config('synchronous_commit', 'off', true)")
			}
			for _, t := range makeHere {
				r.queueTick(bt, t)
			}
			if handOff != nil {
				r.queueHandOff(bt, *handOff, handOffSnap, &handedOver)
			} else {
				queueCall(bt, w.log, "select * from pgq_node.set_consumer_completed($1, $2, $3)", w.conf().Queue, r.name, tick.id)
			}
			tx.queueCommit(bt)
		}); err != nil {
			return err
		}
		// the commit went with the last round trip; a pause or stop does
		// not come between it and the tick (a crash can: ensureTick)
		nc := context.WithoutCancel(ctx)
		if err := tx.Commit(nc); err != nil {
			return err
		}
		w.m.ticksMirrored.Add(float64(len(makeHere)))
		if r.branch && len(makeHere) == 0 && !next {
			return r.mirrorTick(nc, tick)
		}
		return nil
	}
	began := time.Now()
	var flushed time.Duration
	if !r.branch || len(ticks) == 2 {
		// one tick to go: the events as they come
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			if err := handle(ev); err != nil {
				return err
			}
			if len(qw.evs) >= branchFlushEvents {
				if err := qw.flush(ctx, tx); err != nil {
					return err
				}
			}
		}
		end := tickRow{id: b.TickID}
		var makeHere []tickRow
		if r.branch {
			end = ticks[len(ticks)-1]
			if events == 0 {
				makeHere = []tickRow{end}
			}
		}
		flushed = time.Since(began)
		if handOff != nil {
			if handOffSnap, err = r.handOffSnapshot(ctx, *handOff); err != nil {
				return err
			}
		}
		if err := complete(end, makeHere, false); err != nil {
			return err
		}
		if handOff != nil {
			if !handedOver {
				w.log.Warn("table's state changed during the hand-off (resync, remove-table?): this copy ends", "table", handOff.Name)
			}
			w.notify()
			return errCopyDone
		}
	} else {
		// a branch's batch of several ticks: each tick's events in a
		// transaction of their own that first makes the tick before; a run
		// of ticks without events in one transaction
		ticks = ticks[slices.IndexFunc(ticks, func(t tickRow) bool { return t.id == done }):]
		byTick := make([][]*pgq.Event, len(ticks))
		for ev, err := range b.Events(ctx) {
			if err != nil {
				return err
			}
			i := tickOf(ticks, ev.TxID)
			switch {
			case i == 0:
				continue // in a tick done before a crash
			case i == len(ticks):
				return errFatal{fmt.Errorf("event %d (txid %d) of batch %d is in none of its ticks", ev.ID, ev.TxID, b.ID)}
			}
			byTick[i] = append(byTick[i], ev)
		}
		flushed = time.Since(began)
		var pending *tickRow
		tickByTick := func() error {
			for i := 1; i < len(ticks); {
				if i > 1 {
					if tx, err = r.begin(ctx, pending, &qw); err != nil {
						return err
					}
					r.ap.reset(tx)
				}
				if len(byTick[i]) == 0 {
					j := i
					for j+1 < len(ticks) && len(byTick[j+1]) == 0 {
						j++
					}
					if err := complete(ticks[j], ticks[i:j+1], false); err != nil {
						return err
					}
					pending, i = nil, j+1
					continue
				}
				for _, ev := range byTick[i] {
					if err := handle(ev); err != nil {
						return err
					}
				}
				next := i+1 < len(ticks)
				if err := complete(ticks[i], nil, next); err != nil {
					return err
				}
				pending = nil
				if next {
					pending = &ticks[i]
				}
				i++
			}
			return nil
		}
		if err := tickByTick(); err != nil {
			if pending != nil {
				// a stop or failure between the ticks: the completed
				// tick still goes into the queue, as after the batch's
				// last, so that the queue is not left short of it until
				// the provider is reachable again (a takeover of a dead
				// root reads this queue up to this node's completed tick)
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				last, terr := branchLastTick(sctx, r.db, w.conf().Queue)
				if terr == nil && last < pending.id {
					terr = r.mirrorTick(sctx, *pending)
				}
				if terr != nil {
					w.log.Warn("the completed tick is not in this branch's queue yet (made at the next batch)", "tick", pending.id, "err", terr)
				}
				cancel()
			}
			return err
		}
		if len(ticks) > 10 {
			w.log.Info("batch of several ticks copied tick by tick", "ticks", len(ticks)-1, "events", events,
				"range", fmt.Sprintf("%d..%d", ticks[0].id, b.TickID), "took", time.Since(began).Round(time.Millisecond))
		}
	}
	if events >= bigBatch {
		// where a catch-up's time goes: reading the events (the
		// applying, every flushEvery, included), the applying alone, the
		// commit
		w.log.Info("big batch applied", "events", events, "ticks", fmt.Sprintf("%d..%d", b.PrevTickID, b.TickID),
			"read", flushed.Round(time.Millisecond), "applying", r.ap.spent.Round(time.Millisecond),
			"commit", (time.Since(began) - flushed).Round(time.Millisecond))
	}
	if len(quick) > 0 {
		w.mu.Lock()
		for _, name := range quick {
			delete(w.quick, name)
		}
		w.mu.Unlock()
		w.notify()
	}
	w.m.batch(r.copyTable != "", events, skipped, inCopy, b)
	if r.branch {
		w.m.branchEvents.Add(float64(events))
	}
	w.m.rows.WithLabelValues("statement").Add(float64(r.ap.applied - r.ap.bulked))
	w.m.rows.WithLabelValues("bulk").Add(float64(r.ap.bulked))
	r.ap.applied, r.ap.bulked, r.ap.spent = 0, 0, 0
	if r.copyTable == "" && r.copying.Load() {
		// a copy may wait in wanna-sync for a tick past this batch: the
		// watcher looks now instead of after its loop delay
		w.notify()
	}
	return nil
}

// catchUpProvider moves the worker's position on the provider forward to
// the tick this node has completed, when the provider's is behind it: the
// provider lost the finish of batches this node had applied (a crash of
// its server: finishing a batch does not wait for the WAL flush). This node's
// completed tick, committed with the rows, is the truth; moving to it is
// what worker --rewind does by hand (londiste3 stops with "Lost position").
func (r *runner) catchUpProvider(ctx context.Context, completed int64, b *pgq.Batch) error {
	prov, err := connect(ctx, r.w.providerDSN(r.providerLoc))
	if err != nil {
		return err
	}
	defer prov.Close(context.Background())
	if _, err := prov.Exec(ctx, "select pgq.register_consumer_at($1, $2, $3)", r.w.conf().Queue, r.name, completed); err != nil {
		return errFatal{fmt.Errorf("lost position: batch %d is ticks %d..%d, this node has completed tick %d, and the provider cannot be moved there: %w",
			b.ID, b.PrevTickID, b.TickID, completed, err)}
	}
	r.w.log.Warn("the provider had lost this node's position (its server crashed?): moved forward to the tick completed here",
		"provider_position", b.PrevTickID, "completed", completed)
	return errProviderMoved
}

// errProviderMoved ends a batch the provider no longer has open (its
// position was moved): the consumer opens the next one.
var errProviderMoved = errors.New("the provider's position was moved to this node's completed tick")

// sync runs the table state machine's batch-time steps and returns the
// tables to apply with. Main worker: a copy that caught up (wanna-sync:T)
// is told to stop at this batch's end (do-sync:<this tick>), and the batch
// waits while any table is in do-sync. Copy consumer: batches up to the
// one that ends at the do-sync tick are applied, and that one's commit makes
// the table ok (apply, queueHandOff).
func (r *runner) sync(ctx context.Context, b *pgq.Batch) ([]Table, error) {
	w := r.w
	for {
		tables, err := tableList(ctx, r.db, w.conf().Queue)
		if err != nil {
			return nil, err
		}
		wait := false
		if r.copyTable == "" {
			for _, t := range tables {
				if !t.Local {
					continue
				}
				if tick, ok := stateTick(t.MergeState, "wanna-sync:"); ok && b.TickID >= tick {
					w.log.Info("copy caught up: hand-off at this batch's end", "table", t.Name, "tick", b.TickID)
					if _, err := call(ctx, r.db, w.log, "select * from londiste.local_set_table_state($1, $2, $3, $4)",
						w.conf().Queue, t.Name, nullIfEmpty(t.CustomSnapshot), "do-sync:"+strconv.FormatInt(b.TickID, 10)); err != nil {
						return nil, err
					}
					delete(w.filterUntil, t.Name) // an earlier copy's: the new snapshot gets its own
					w.notify()
					wait = true
				}
				if strings.HasPrefix(t.MergeState, "do-sync:") {
					wait = true
				}
			}
		} else {
			var t *Table
			for i := range tables {
				if tables[i].Name == r.copyTable && tables[i].Local {
					t = &tables[i]
				}
			}
			if t == nil {
				return nil, fmt.Errorf("%w: table %s was removed", errCopyDone, r.copyTable)
			}
			if tick, ok := stateTick(t.MergeState, "do-sync:"); ok {
				// the copy applies every batch up to the one that ends at
				// the do-sync tick, that one included, and hands the table
				// over in its commit (queueHandOff): the main worker's
				// batch ending there may start later than the copy's
				// (batches of a lagging consumer span several ticks), so
				// the copy cannot leave its last batch to it as londiste3
				// does
				r.handing.Store(true)
				if b.TickID > tick {
					return nil, fmt.Errorf("%w: table %s: copy at tick %d passed the hand-off tick %d", errRecopy, t.Name, b.TickID, tick)
				}
				return tables, nil
			}
			if _, ok := stateTick(t.MergeState, "wanna-sync:"); ok {
				r.handing.Store(true)
				wait = true
			} else if t.MergeState == "catching-up" {
				last, err := r.providerLastTick(ctx, b)
				if err != nil {
					return nil, err
				}
				if b.TickID < last {
					return tables, nil
				}
				// at the provider's head: ask the main worker to take over
				// at the end of this batch or later
				if _, err := call(ctx, r.db, w.log, "select * from londiste.local_set_table_state($1, $2, $3, $4)",
					w.conf().Queue, t.Name, nullIfEmpty(t.CustomSnapshot), "wanna-sync:"+strconv.FormatInt(b.TickID, 10)); err != nil {
					return nil, err
				}
				w.notify()
				r.forceTick(ctx, b)
				wait = true
			} else {
				return nil, fmt.Errorf("table %s: copy consumer in state %s", t.Name, stateName(t.MergeState))
			}
		}
		if !wait {
			return tables, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-w.changed():
		case <-time.After(min(w.conf().LoopDelay, 100*time.Millisecond)):
		}
	}
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func stateTick(state, prefix string) (int64, bool) {
	if !strings.HasPrefix(state, prefix) {
		return 0, false
	}
	n, err := strconv.ParseInt(state[len(prefix):], 10, 64)
	return n, err == nil
}

// providerLastTick is the provider queue's newest tick, read in the batch's
// own transaction.
func (r *runner) providerLastTick(ctx context.Context, b *pgq.Batch) (int64, error) {
	var last int64
	err := b.Tx().QueryRow(ctx, "select last_tick_id from pgq.get_queue_info($1)", r.w.conf().Queue).Scan(&last)
	return last, err
}

func (r *runner) forceTick(ctx context.Context, b *pgq.Batch) {
	prov, err := connect(ctx, r.w.providerDSN(r.providerLoc))
	if err != nil {
		return
	}
	defer prov.Close(context.Background())
	_ = tickNow(ctx, prov, r.w.conf().Queue, r.w.conf().RemoteExtraConnstr)
}

// durableTx begins a transaction on the target whose commit is on disk
// before it returns, whatever the server's synchronous_commit: what it
// records must be there before the provider lets the batch go (with it off,
// a crash would lose batches the provider no longer has). With replica,
// triggers and foreign key checks are off in it (replica mode).
func durableTx(ctx context.Context, db *pgx.Conn, replica bool) (pgx.Tx, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, err
	}
	sql := "select set_config('synchronous_commit', 'on', true)"
	if replica {
		sql += ", londiste.set_session_replication_role('replica', true)"
	}
	if _, err := tx.Exec(ctx, sql); err != nil {
		_ = tx.Rollback(context.Background())
		return nil, err
	}
	return tx, nil
}

// handOffSnapshot is the snapshot a copy hands its table over with, once
// it has applied the events up to the do-sync tick: the main worker's
// provider's snapshot of that tick, which sees exactly the events the copy
// applied (any tick's events are the same set on every node, so this holds
// for a copy that read another node too). The main worker skips them in
// its batch that ends there, whatever tick that batch starts at, after a
// crash too; londiste3 reads the snapshot the same way. A copy from another
// node retires its consumer there first: the main worker's provider never
// sees it, so leftovers would not be cleaned (a crash before the hand-off
// commits then copies the table again).
func (r *runner) handOffSnapshot(ctx context.Context, t Table) (string, error) {
	w := r.w
	tick, ok := stateTick(t.MergeState, "do-sync:")
	if !ok {
		return "", fmt.Errorf("table %s: hand-off in state %s", t.Name, stateName(t.MergeState))
	}
	loc := r.providerLoc
	if r.mainProviderLoc != "" {
		loc = r.mainProviderLoc
	}
	prov, err := connect(ctx, w.providerDSN(loc))
	if err != nil {
		return "", err
	}
	defer prov.Close(context.Background())
	var snap string
	if err := prov.QueryRow(ctx, `select t.tick_snapshot::text from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue
	   where q.queue_name = $1 and t.tick_id = $2`, w.conf().Queue, tick).Scan(&snap); err != nil {
		return "", fmt.Errorf("table %s: the provider's tick %d (the hand-off's): %w", t.Name, tick, err)
	}
	if r.mainProviderLoc == "" {
		return snap, nil
	}
	src, err := connect(ctx, w.providerDSN(r.providerLoc))
	if err != nil {
		return "", err
	}
	defer src.Close(context.Background())
	if _, err := src.Exec(ctx, `select pgq.unregister_consumer($1, $2) from pgq.get_consumer_info($1) where consumer_name = $2`, w.conf().Queue, r.name); err != nil {
		return "", fmt.Errorf("unregister the copy consumer on the copy node %s: %w", r.providerNode, err)
	}
	w.log.Info("copy from another node handing over", "table", t.Name, "copy_node", r.providerNode, "tick", tick)
	return snap, nil
}

// queueHandOff queues onto b the copy's hand-off, in the transaction of
// the batch that ends at the do-sync tick: the table ok with snap (the
// snapshot of that tick), unless its state changed meanwhile (a resync or
// remove-table committed first wins; *set tells), and the copy consumer
// retired here. The rows up to that tick and the hand-off commit
// together, so no crash leaves a table whose copy has applied the main
// worker's do-sync batch still in do-sync (londiste3, taking over, would
// stop at it).
func (r *runner) queueHandOff(b *pgx.Batch, t Table, snap string, set *bool) {
	q := r.w.conf().Queue
	b.Queue(setStateIfSQL, q, t.Name, nullIfEmpty(snap), "ok", t.MergeState).Query(func(rows pgx.Rows) error {
		res, err := readResult(rows, r.w.log, "local_set_table_state")
		*set = res.Code != 0
		return err
	})
	queueCall(b, r.w.log, "select * from pgq_node.unregister_consumer($1, $2)", q, r.name)
}

// setStateIfSQL sets a local table's state ($4) and snapshot ($3) only if
// it is still in state $5 (the row locked, and checked again after a wait
// for it): a resync or remove-table committed meanwhile wins over the
// worker's own step. It answers local_set_table_state's row, or no row.
const setStateIfSQL = `with l as (select table_name from londiste.table_info
     where queue_name = $1 and table_name = $2 and local and merge_state = $5 for update)
  select s.ret_code, s.ret_note from l, lateral londiste.local_set_table_state($1, l.table_name, $3, $4) s`

// setStateIf runs setStateIfSQL in tx and reports whether it set the state.
func (w *Worker) setStateIf(ctx context.Context, tx pgx.Tx, table, from string, snap any, to string) (bool, error) {
	rows, err := tx.Query(ctx, setStateIfSQL, w.conf().Queue, table, snap, to, from)
	if err != nil {
		return false, fmt.Errorf("table %s: state: %w", table, err)
	}
	res, err := readResult(rows, w.log, "local_set_table_state")
	return res.Code != 0, err
}

// cascadeEvent handles pgq.* events: member locations, and on a branch
// the global watermark; a branch also copies them into its queue.
func (r *runner) cascadeEvent(ctx context.Context, tx pgx.Tx, ev *pgq.Event, qw *queueWriter) error {
	w := r.w
	q := w.conf().Queue
	copied := ev
	if r.branch {
		defer func() { qw.add(copied) }()
	}
	if ev.Extra1 != q {
		return nil // another queue's (pgq.tick-id of merge setups)
	}
	switch ev.Type {
	case "pgq.location-info":
		dead := ev.Extra3 == "1" || ev.Extra3 == "t" || ev.Extra3 == "true"
		_, err := call(ctx, tx, w.log, "select * from pgq_node.register_location($1, $2, $3, $4)", q, ev.Data, ev.Extra2, dead)
		return err
	case "pgq.unregister-location":
		_, err := call(ctx, tx, w.log, "select * from pgq_node.unregister_location($1, $2)", q, ev.Data)
		return err
	case "pgq.global-watermark":
		if !r.branch {
			return nil // a leaf keeps no queue
		}
		tick, err := strconv.ParseInt(ev.Data, 10, 64)
		if err != nil {
			return fmt.Errorf("pgq.global-watermark %q: %w", ev.Data, err)
		}
		n, err := nodeInfo(ctx, tx, q)
		if err != nil {
			return err
		}
		if syncWatermarkNodes(n.NodeAttrs) != nil {
			// kept for publishing (publishWatermarks); the nodes below
			// get this branch's own global watermark instead
			w.realGlobalWM.Store(tick)
			c := *ev
			c.Data = strconv.FormatInt(n.GlobalWatermark, 10)
			copied = &c
			return nil
		}
		_, err = call(ctx, tx, w.log, "select * from pgq_node.set_global_watermark($1, $2)", q, tick)
		return err
	}
	return nil // pgq.tick-id: merge setups
}

// londisteEvent keeps the set in step with the root's: tables and
// sequences added and removed, sequence values.
func (r *runner) londisteEvent(ctx context.Context, ev *pgq.Event) error {
	w := r.w
	if err := r.ap.flush(ctx); err != nil {
		return err
	}
	tx := r.ap.tx
	var err error
	switch ev.Type {
	case "londiste.add-table":
		if registered(ev.Data, w.conf().RegisterOnlyTables, w.conf().RegisterSkipTables) {
			_, err = call(ctx, tx, w.log, "select * from londiste.global_add_table($1, $2)", w.conf().Queue, ev.Data)
		}
	case "londiste.remove-table":
		_, err = call(ctx, tx, w.log, "select * from londiste.global_remove_table($1, $2)", w.conf().Queue, ev.Data)
	case "londiste.remove-seq":
		_, err = call(ctx, tx, w.log, "select * from londiste.global_remove_seq($1, $2)", w.conf().Queue, ev.Data)
	case "londiste.update-seq":
		if registered(ev.Extra1, w.conf().RegisterOnlySeqs, w.conf().RegisterSkipSeqs) {
			v, perr := strconv.ParseInt(ev.Data, 10, 64)
			if perr != nil {
				return fmt.Errorf("londiste.update-seq %s: value %q: %w", ev.Extra1, ev.Data, perr)
			}
			_, err = call(ctx, tx, w.log, "select * from londiste.global_update_seq($1, $2, $3)", w.conf().Queue, ev.Extra1, v)
		}
	default:
		w.log.Warn("unknown londiste event ignored", "type", ev.Type, "ev_id", ev.ID)
	}
	return err
}

// both connects to this node and to the worker's provider.
func (w *Worker) both(ctx context.Context) (db, prov *pgx.Conn, st *consumerState, err error) {
	if db, err = connect(ctx, w.conf().DB); err != nil {
		return nil, nil, nil, err
	}
	if st, err = getConsumerState(ctx, db, w.conf().Queue, w.conf().Consumer); err == nil {
		prov, err = connect(ctx, w.providerDSN(st.providerLocation))
	}
	if err != nil {
		db.Close(context.Background())
		return nil, nil, nil, fmt.Errorf("provider: %w", err)
	}
	return db, prov, st, nil
}

// Rewind moves the worker's position on the provider back (or forward) to
// the tick this node has completed (londiste3 worker --rewind): after the
// provider's consumer was moved or recreated.
func (w *Worker) Rewind(ctx context.Context) error {
	db, prov, st, err := w.both(ctx)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	defer prov.Close(context.Background())
	if st.completed == 0 {
		return errors.New("rewind: no completed tick on this node")
	}
	if _, err := prov.Exec(ctx, "select pgq.register_consumer_at($1, $2, $3)", w.conf().Queue, w.conf().Consumer, st.completed); err != nil {
		return fmt.Errorf("rewind to tick %d: %w", st.completed, err)
	}
	w.log.Info("provider position set to this node's completed tick", "tick", st.completed)
	return nil
}

// Reset records the provider's position of the worker as this node's
// completed tick (londiste3 worker --reset): the opposite of Rewind, after
// this node's state was lost or restored from elsewhere.
func (w *Worker) Reset(ctx context.Context) error {
	db, prov, _, err := w.both(ctx)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	defer prov.Close(context.Background())
	var last int64
	err = prov.QueryRow(ctx, "select last_tick from pgq.get_consumer_info($1, $2)", w.conf().Queue, w.conf().Consumer).Scan(&last)
	if errors.Is(err, pgx.ErrNoRows) {
		return errors.New("reset: the worker is not registered on the provider")
	}
	if err != nil {
		return err
	}
	if _, err := call(ctx, db, w.log, "select * from pgq_node.set_consumer_completed($1, $2, $3)", w.conf().Queue, w.conf().Consumer, last); err != nil {
		return err
	}
	w.log.Info("completed tick set to the provider's position", "tick", last)
	return nil
}
