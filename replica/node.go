// Package replica is Londiste-style table replication in Go: node
// administration, the worker that applies a provider's row events to local
// tables, the table copy and compare/repair, all on the pgq, pgq_node and
// londiste schemas and with londiste3's on-disk protocol (consumer names,
// pgq_node.local_state, londiste.table_info.merge_state), so a pgqgo worker
// and a londiste3 worker can take over from each other at any moment.
package replica

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgqgo/pgqgo/schema"
)

// ErrNoNode is returned when the local database is not a node of the queue.
var ErrNoNode = errors.New("this database is not a node of the queue (run create-root or create-leaf first)")

// Admin runs the administrative commands of one node, given by its ini.
type Admin struct {
	cfg *Config
	db  *pgx.Conn
	log *slog.Logger
}

// NewAdmin connects to the node's database.
func NewAdmin(ctx context.Context, cfg *Config, log *slog.Logger) (*Admin, error) {
	if log == nil {
		log = slog.Default()
	}
	db, err := connect(ctx, cfg.DB)
	if err != nil {
		return nil, err
	}
	return &Admin{cfg: cfg, db: db, log: log}, nil
}

// Close closes the node's connection.
func (a *Admin) Close() { a.db.Close(context.Background()) }

func connect(ctx context.Context, dsn string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("connect string %q: %w", redact(dsn), err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "pgqgo londiste"
	}
	if cfg.ConnectTimeout == 0 {
		// a node whose host is gone must not hold a takeover or a worker
		// for the system's TCP timeout
		cfg.ConnectTimeout = 10 * time.Second
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	return c, nil
}

// redact hides a password in a connect string for messages.
func redact(dsn string) string {
	var out []string
	for _, f := range strings.Fields(dsn) {
		if strings.HasPrefix(f, "password=") {
			f = "password=***"
		}
		out = append(out, f)
	}
	return strings.Join(out, " ")
}

// Result is one ret_code/ret_note row of a pgq_node or londiste function.
type Result struct {
	Code int
	Note string
}

// call runs a function returning (ret_code, ret_note, ...) and fails on a
// code of 400 or more, as londiste3 does; 3xx notes are logged as warnings.
func call(ctx context.Context, db queryer, log *slog.Logger, sql string, args ...any) (Result, error) {
	rows, err := db.Query(ctx, sql, args...)
	if err != nil {
		return Result{}, err
	}
	return readResult(rows, log, sql)
}

// readResult reads (and closes) call's answer.
func readResult(rows pgx.Rows, log *slog.Logger, sql string) (Result, error) {
	defer rows.Close()
	var res Result
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return res, err
		}
		if len(vals) < 2 {
			return res, fmt.Errorf("%s: not a ret_code/ret_note result", sql)
		}
		code, _ := vals[0].(int32)
		note, _ := vals[1].(string)
		res = Result{Code: int(code), Note: note}
		switch {
		case code >= 400:
			return res, fmt.Errorf("%d %s", code, note)
		case code >= 300 && log != nil:
			log.Warn(note, "code", code)
		}
	}
	return res, rows.Err()
}

// queueCall queues a call of a function answering ret_code, ret_note onto
// b, checked as call does: a code of 400 or more fails the batch.
func queueCall(b *pgx.Batch, log *slog.Logger, sql string, args ...any) {
	b.Queue(sql, args...).Query(func(rows pgx.Rows) error {
		_, err := readResult(rows, log, sql)
		return err
	})
}

type queryer interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// NodeInfo is pgq_node.get_node_info's answer.
type NodeInfo struct {
	Type, Name, WorkerName       string
	ProviderNode, ProviderLoc    string
	CombinedQueue, CombinedType  string
	GlobalWatermark, LocalWM     int64
	WorkerLastTick               int64
	WorkerPaused, WorkerUptodate bool
	NodeAttrs                    string
	Exists                       bool
	WorkerLastTickTime           *time.Time
}

func nodeInfo(ctx context.Context, db queryer, queue string) (*NodeInfo, error) {
	var n NodeInfo
	var typ, name, worker, pnode, ploc, cq, ct, attrs *string
	var gwm, lwm, wlt *int64
	var paused, uptodate *bool
	err := db.QueryRow(ctx, `select node_type, node_name, worker_name, provider_node, provider_location,
	        combined_queue, combined_type, global_watermark, local_watermark, worker_last_tick,
	        worker_paused, worker_uptodate, node_attrs
	   from pgq_node.get_node_info($1)`, queue).Scan(&typ, &name, &worker, &pnode, &ploc, &cq, &ct,
		&gwm, &lwm, &wlt, &paused, &uptodate, &attrs)
	if err != nil {
		return nil, fmt.Errorf("pgq_node.get_node_info: %w", err)
	}
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	i64 := func(p *int64) int64 {
		if p == nil {
			return 0
		}
		return *p
	}
	n = NodeInfo{Type: str(typ), Name: str(name), WorkerName: str(worker), ProviderNode: str(pnode),
		ProviderLoc: str(ploc), CombinedQueue: str(cq), CombinedType: str(ct), GlobalWatermark: i64(gwm),
		LocalWM: i64(lwm), WorkerLastTick: i64(wlt), NodeAttrs: str(attrs), Exists: typ != nil}
	n.WorkerPaused = paused != nil && *paused
	n.WorkerUptodate = uptodate != nil && *uptodate
	return &n, nil
}

// node reads the local node's info and fails if there is none.
func (a *Admin) node(ctx context.Context) (*NodeInfo, error) {
	n, err := nodeInfo(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return nil, err
	}
	if !n.Exists {
		return nil, fmt.Errorf("queue %s: %w", a.cfg.Queue, ErrNoNode)
	}
	return n, nil
}

// ensureSchemas installs pgqgo's pgq, pgq_node and londiste where they are
// missing (londiste3 creates Skytools' extensions at this point).
func ensureSchemas(ctx context.Context, db *pgx.Conn, log *slog.Logger) error {
	has := func(s string) (bool, error) {
		var ok bool
		err := db.QueryRow(ctx, "select exists (select 1 from pg_namespace where nspname = $1)", s).Scan(&ok)
		return ok, err
	}
	ok, err := has("pgq")
	if err != nil {
		return err
	}
	if !ok {
		log.Info("installing pgqgo's pgq schema")
		if _, err := schema.Install(ctx, db, schema.InstallOptions{}); err != nil {
			return fmt.Errorf("install pgq: %w", err)
		}
	}
	for _, c := range []schema.Component{schema.Node, schema.Londiste} {
		ok, err := has(string(c))
		if err != nil {
			return err
		}
		if !ok {
			log.Info("installing pgqgo's " + string(c) + " schema")
			if err := schema.InstallComponent(ctx, db, c); err != nil {
				return fmt.Errorf("install %s: %w", c, err)
			}
		}
	}
	return nil
}

// prepareNode installs the schemas where missing and reports whether the
// node exists already (then create-* has nothing to do, as in londiste3).
func (a *Admin) prepareNode(ctx context.Context) (bool, error) {
	if err := ensureSchemas(ctx, a.db, a.log); err != nil {
		return false, err
	}
	n, err := nodeInfo(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return false, err
	}
	if n.Exists {
		a.log.Info("node is already initialized", "type", n.Type, "name", n.Name)
	}
	return n.Exists, nil
}

// CreateRoot makes the local database the root node name, reachable by
// others at location (londiste3 create-root).
func (a *Admin) CreateRoot(ctx context.Context, name, location string) error {
	name, location, err := a.nodeNameAndLocation(name, location)
	if err != nil {
		return err
	}
	if done, err := a.prepareNode(ctx); err != nil || done {
		return err
	}
	if _, err := call(ctx, a.db, a.log, "select * from pgq_node.register_location($1, $2, $3, false)", a.cfg.Queue, name, location); err != nil {
		return fmt.Errorf("register_location: %w", err)
	}
	if _, err := call(ctx, a.db, a.log, "select * from pgq_node.create_node($1, 'root', $2, $3, null, null, null)", a.cfg.Queue, name, a.cfg.Consumer); err != nil {
		return fmt.Errorf("create_node: %w", err)
	}
	a.log.Info("root node created", "node", name, "queue", a.cfg.Queue)
	return nil
}

func (a *Admin) nodeNameAndLocation(name, location string) (string, string, error) {
	if name == "" {
		name = a.cfg.NodeName
	}
	if name == "" {
		return "", "", errors.New("node name must be given either on the command line or as node_name in the config")
	}
	if location == "" {
		location = a.cfg.PublicNodeLocation
	}
	if location == "" {
		return "", "", errors.New("node public location must be given either on the command line or as public_node_location in the config")
	}
	if _, err := pgx.ParseConfig(location); err != nil {
		return "", "", fmt.Errorf("public location %q: %w", redact(location), err)
	}
	return name, location, nil
}

// remote connects to another node's public location.
func (a *Admin) remote(ctx context.Context, location string) (*pgx.Conn, error) {
	c, err := connect(ctx, a.remoteDSN(location))
	if err != nil {
		return nil, fmt.Errorf("node at %s: %w", redact(location), err)
	}
	return c, nil
}

// remoteDSN is the connect string of another node at location
// (remote_extra_connstr appended).
func (a *Admin) remoteDSN(location string) string {
	if a.cfg.RemoteExtraConnstr != "" {
		return location + " " + a.cfg.RemoteExtraConnstr
	}
	return location
}

// Member is one row of pgq_node.get_queue_locations.
type Member struct {
	Name, Location string
	Dead           bool
}

func members(ctx context.Context, db queryer, queue string) ([]Member, error) {
	rows, err := db.Query(ctx, "select node_name, node_location, dead from pgq_node.get_queue_locations($1) order by node_name", queue)
	if err != nil {
		return nil, fmt.Errorf("pgq_node.get_queue_locations: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Member, error) {
		var m Member
		return m, r.Scan(&m.Name, &m.Location, &m.Dead)
	})
}

// Members lists the queue's nodes as the local node knows them.
func (a *Admin) Members(ctx context.Context) ([]Member, error) {
	if _, err := a.node(ctx); err != nil {
		return nil, err
	}
	return members(ctx, a.db, a.cfg.Queue)
}

// findRoot walks provider locations up from location to the root node.
func (a *Admin) findRoot(ctx context.Context, location string) (*pgx.Conn, error) {
	for range 32 {
		c, err := a.remote(ctx, location)
		if err != nil {
			return nil, err
		}
		n, err := nodeInfo(ctx, c, a.cfg.Queue)
		if err != nil {
			c.Close(ctx)
			return nil, err
		}
		if !n.Exists {
			c.Close(ctx)
			return nil, fmt.Errorf("%s is not a node of queue %s", redact(location), a.cfg.Queue)
		}
		if n.Type == "root" {
			return c, nil
		}
		c.Close(ctx)
		location = n.ProviderLoc
	}
	return nil, errors.New("no root found within 32 providers (a loop?)")
}

// CreateLeaf makes the local database a leaf node that replicates from the
// node at provider (londiste3 create-leaf).
func (a *Admin) CreateLeaf(ctx context.Context, name, location, provider string) error {
	return a.createSubscriber(ctx, "leaf", name, location, provider, nil)
}

// CreateBranch makes the local database a branch node (londiste3
// create-branch): it replicates from the node at provider and keeps a copy
// of the queue, with the root's event ids and ticks, for nodes below it.
// syncWatermark lists the nodes whose local watermarks this branch uses as
// its global watermark (--sync-watermark), so that they keep each other's
// events.
func (a *Admin) CreateBranch(ctx context.Context, name, location, provider string, syncWatermark []string) error {
	return a.createSubscriber(ctx, "branch", name, location, provider, syncWatermark)
}

func (a *Admin) createSubscriber(ctx context.Context, kind, name, location, provider string, syncWatermark []string) error {
	name, location, err := a.nodeNameAndLocation(name, location)
	if err != nil {
		return err
	}
	if provider == "" {
		provider = a.cfg.InitialProviderLocation
	}
	if provider == "" {
		return errors.New("the provider's connect string is needed: --provider or initial_provider_location")
	}
	if done, err := a.prepareNode(ctx); err != nil || done {
		return err
	}
	root, err := a.findRoot(ctx, provider)
	if err != nil {
		return err
	}
	defer root.Close(ctx)
	mems, err := members(ctx, root, a.cfg.Queue)
	if err != nil {
		return err
	}
	for _, m := range mems {
		if m.Name == name {
			return fmt.Errorf("node %q already exists in the cascade", name)
		}
	}
	prov, err := a.remote(ctx, provider)
	if err != nil {
		return err
	}
	defer prov.Close(ctx)
	pn, err := nodeInfo(ctx, prov, a.cfg.Queue)
	if err != nil {
		return err
	}
	if !pn.Exists {
		return fmt.Errorf("provider node not found at %s", redact(provider))
	}
	if pn.Type == "leaf" {
		return fmt.Errorf("provider %s is a leaf: a leaf has no queue to read from", pn.Name)
	}
	if _, err := call(ctx, root, a.log, "select * from pgq_node.register_location($1, $2, $3, false)", a.cfg.Queue, name, location); err != nil {
		return fmt.Errorf("register on root: %w", err)
	}
	if _, err := call(ctx, prov, a.log, "select * from pgq_node.register_location($1, $2, $3, false)", a.cfg.Queue, name, location); err != nil {
		return fmt.Errorf("register on provider: %w", err)
	}
	var gwm int64
	if err := prov.QueryRow(ctx, "select global_watermark from pgq_node.register_subscriber($1, $2, $3, null)",
		a.cfg.Queue, name, a.cfg.Consumer).Scan(&gwm); err != nil {
		return fmt.Errorf("register_subscriber on provider: %w", err)
	}
	if _, err := call(ctx, a.db, a.log, "select * from pgq_node.register_location($1, $2, $3, false)", a.cfg.Queue, name, location); err != nil {
		return err
	}
	for _, m := range mems {
		if _, err := call(ctx, a.db, a.log, "select * from pgq_node.register_location($1, $2, $3, $4)", a.cfg.Queue, m.Name, m.Location, m.Dead); err != nil {
			return err
		}
	}
	if _, err := call(ctx, a.db, a.log, "select * from pgq_node.create_node($1, $2, $3, $4, $5, $6, null)",
		a.cfg.Queue, kind, name, a.cfg.Consumer, pn.Name, gwm); err != nil {
		return fmt.Errorf("create_node: %w", err)
	}
	if kind == "branch" {
		// create_node made the branch's first tick with this server's time:
		// it gets the provider's (the root's) time and event seq, as every
		// tick after it will
		var tt time.Time
		var seq int64
		if err := prov.QueryRow(ctx, `select t.tick_time, t.tick_event_seq from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue
		    where q.queue_name = $1 and t.tick_id = $2`, a.cfg.Queue, gwm).Scan(&tt, &seq); err != nil {
			return fmt.Errorf("the provider's tick %d: %w", gwm, err)
		}
		if _, err := a.db.Exec(ctx, `update pgq.tick t set tick_time = $3, tick_event_seq = $4 from pgq.queue q
		    where q.queue_id = t.tick_queue and q.queue_name = $1 and t.tick_id = $2`, a.cfg.Queue, gwm, tt, seq); err != nil {
			return fmt.Errorf("the branch's first tick: %w", err)
		}
		if _, err := a.db.Exec(ctx, "select pgq.seq_setval(queue_event_seq, $2) from pgq.queue where queue_name = $1", a.cfg.Queue, seq); err != nil {
			return fmt.Errorf("the branch's event seq: %w", err)
		}
	}
	if syncWatermark != nil {
		attrs := url.Values{"sync_watermark": {strings.Join(syncWatermark, ",")}}.Encode()
		if _, err := call(ctx, a.db, a.log, "select * from pgq_node.set_node_attrs($1, $2)", a.cfg.Queue, attrs); err != nil {
			return fmt.Errorf("set_node_attrs: %w", err)
		}
	}
	if err := a.syncSetFrom(ctx, prov); err != nil {
		return err
	}
	a.log.Info(kind+" node created", "node", name, "provider", pn.Name, "queue", a.cfg.Queue)
	return nil
}

// syncSetFrom copies the provider's table and sequence lists (the set),
// honouring register_only_*/register_skip_*.
func (a *Admin) syncSetFrom(ctx context.Context, prov *pgx.Conn) error {
	tables, err := tableList(ctx, prov, a.cfg.Queue)
	if err != nil {
		return err
	}
	mine, err := tableList(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, t := range mine {
		have[t.Name] = true
	}
	inSet := map[string]bool{}
	for _, t := range tables {
		inSet[t.Name] = true
		if have[t.Name] || !registered(t.Name, a.cfg.RegisterOnlyTables, a.cfg.RegisterSkipTables) {
			continue
		}
		if _, err := call(ctx, a.db, a.log, "select * from londiste.global_add_table($1, $2)", a.cfg.Queue, t.Name); err != nil {
			return fmt.Errorf("global_add_table %s: %w", t.Name, err)
		}
	}
	for _, t := range mine {
		if !inSet[t.Name] {
			a.log.Info("table gone from the provider's set, removing", "table", t.Name)
			if _, err := call(ctx, a.db, a.log, "select * from londiste.global_remove_table($1, $2)", a.cfg.Queue, t.Name); err != nil {
				return err
			}
		}
	}
	seqs, err := seqList(ctx, prov, a.cfg.Queue)
	if err != nil {
		return err
	}
	for _, s := range seqs {
		if !registered(s.Name, a.cfg.RegisterOnlySeqs, a.cfg.RegisterSkipSeqs) {
			continue
		}
		if _, err := call(ctx, a.db, a.log, "select * from londiste.global_update_seq($1, $2, $3)", a.cfg.Queue, s.Name, s.LastValue); err != nil {
			return err
		}
	}
	return nil
}

func registered(name string, only, skip []string) bool {
	if len(only) > 0 && !contains(only, name) {
		return false
	}
	return !contains(skip, name)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// SetPaused pauses or resumes the node's worker and waits, up to timeout,
// for the worker to acknowledge (pgq_node's uptodate handshake).
func (a *Admin) SetPaused(ctx context.Context, consumer string, paused bool, timeout time.Duration) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	if consumer == "" {
		consumer = n.WorkerName
	}
	return setPaused(ctx, a.db, a.log, a.cfg.Queue, consumer, paused, timeout)
}

// setPaused sets a cascaded consumer's pause flag on db and waits, up to
// timeout, for its worker to acknowledge.
func setPaused(ctx context.Context, db queryer, log *slog.Logger, queue, consumer string, paused bool, timeout time.Duration) error {
	if _, err := call(ctx, db, log, "select * from pgq_node.set_consumer_paused($1, $2, $3)", queue, consumer, paused); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	for {
		var uptodate bool
		if err := db.QueryRow(ctx, "select uptodate from pgq_node.get_consumer_state($1, $2)", queue, consumer).Scan(&uptodate); err != nil {
			return fmt.Errorf("get_consumer_state: %w", err)
		}
		if uptodate {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("consumer %s has not acknowledged within %v (is its worker running?)", consumer, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TagDead marks nodes dead (or alive again) on the local node and on every
// live member (londiste3 tag-dead; tag-alive, which londiste3 routes but
// never implemented, is the reverse).
func (a *Admin) TagDead(ctx context.Context, dead bool, names ...string) error {
	if len(names) == 0 {
		return errors.New("name the nodes")
	}
	if _, err := a.node(ctx); err != nil {
		return err
	}
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return err
	}
	known := map[string]Member{}
	for _, m := range mems {
		known[m.Name] = m
	}
	for _, name := range names {
		if _, ok := known[name]; !ok {
			return fmt.Errorf("node %q is not a member of queue %s", name, a.cfg.Queue)
		}
	}
	set := func(db queryer, where string) error {
		for _, name := range names {
			// the location stays; only the dead flag changes
			if _, err := call(ctx, db, a.log, "select * from pgq_node.register_location($1, $2, $3, $4)", a.cfg.Queue, name, known[name].Location, dead); err != nil {
				return fmt.Errorf("%s: %w", where, err)
			}
		}
		return nil
	}
	if err := set(a.db, "local node"); err != nil {
		return err
	}
	for _, m := range mems {
		if m.Dead || contains(names, m.Name) {
			continue
		}
		c, err := a.remote(ctx, m.Location)
		if err != nil {
			a.log.Warn("member unreachable, not tagged there", "node", m.Name, "err", err)
			continue
		}
		err = set(c, m.Name)
		c.Close(ctx)
		if err != nil {
			a.log.Warn("member not tagged", "node", m.Name, "err", err)
		}
	}
	return nil
}
