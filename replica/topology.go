package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
)

// Topology changes: moving a node (or a cascaded consumer) to another
// provider, and the takeovers built from such moves. Every step is one of
// pgq_node's, in londiste3's order, so that londiste3's tools and workers
// see the same state at every moment.

// member connects to a member of the cascade by name (the local database
// when it is this node).
func (a *Admin) member(ctx context.Context, name string) (*pgx.Conn, Member, error) {
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return nil, Member{}, err
	}
	i := slices.IndexFunc(mems, func(m Member) bool { return m.Name == name })
	if i < 0 {
		return nil, Member{}, fmt.Errorf("node %q is not a member of the cascade", name)
	}
	m := mems[i]
	if n, err := a.node(ctx); err == nil && n.Name == name {
		c, err := connect(ctx, a.cfg.DB)
		return c, m, err
	}
	c, err := a.remote(ctx, m.Location)
	return c, m, err
}

// ChangeProviderOptions selects what change-provider moves: a node's
// worker (Node; the local node when empty) or one cascaded consumer
// (Consumer) of the local node.
type ChangeProviderOptions struct {
	Node, Consumer string
	// Timeout bounds each wait: the pause's acknowledgement and the new
	// provider reaching the consumer's tick.
	Timeout time.Duration
}

// ChangeProvider makes a node's worker (or a cascaded consumer) read from
// newProvider, without losing or repeating an event (londiste3
// change-provider): the consumer is paused, subscribed on the new provider
// at the tick it has completed, switched over, resumed, and unsubscribed
// from the old provider. Unlike londiste3 it refuses a move that would
// make a loop, waits for a new provider that has not reached the tick yet,
// and resumes the consumer when a step fails.
func (a *Admin) ChangeProvider(ctx context.Context, newProvider string, opts ChangeProviderOptions) error {
	if newProvider == "" {
		return errors.New("change-provider: --provider is needed")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	local, err := a.node(ctx)
	if err != nil {
		return err
	}
	nodeName, consumer := opts.Node, opts.Consumer
	if nodeName == "" {
		nodeName = local.Name
	}
	nodeDB, me, err := a.member(ctx, nodeName)
	if err != nil {
		return err
	}
	defer nodeDB.Close(context.Background())
	n, err := nodeInfo(ctx, nodeDB, a.cfg.Queue)
	if err != nil {
		return err
	}
	if !n.Exists {
		return fmt.Errorf("node %s: %w", nodeName, ErrNoNode)
	}
	if consumer == "" {
		consumer = n.WorkerName
	}
	if nodeName == newProvider {
		return errors.New("change-provider: a node cannot be its own provider")
	}
	if n.Type == "root" && consumer == n.WorkerName {
		return errors.New("change-provider: the root has no provider (use takeover to change the root)")
	}
	st, err := getConsumerState(ctx, nodeDB, a.cfg.Queue, consumer)
	if err != nil {
		return err
	}
	old := st.providerNode
	if old == newProvider {
		a.log.Info("already the provider", "node", nodeName, "consumer", consumer, "provider", newProvider)
		return nil
	}
	provDB, _, err := a.member(ctx, newProvider)
	if err != nil {
		return err
	}
	defer provDB.Close(context.Background())
	pn, err := nodeInfo(ctx, provDB, a.cfg.Queue)
	if err != nil {
		return err
	}
	if !pn.Exists || pn.Type == "leaf" {
		return fmt.Errorf("change-provider: %s has no queue to read from (type %q)", newProvider, pn.Type)
	}
	if consumer == n.WorkerName {
		if err := a.refuseLoop(ctx, nodeName, newProvider); err != nil {
			return err
		}
	}

	if err := setPaused(ctx, nodeDB, a.log, a.cfg.Queue, consumer, true, opts.Timeout); err != nil {
		return fmt.Errorf("pausing %s on %s: %w", consumer, nodeName, err)
	}
	resumed := false
	defer func() {
		if !resumed {
			if err := setPaused(context.WithoutCancel(ctx), nodeDB, a.log, a.cfg.Queue, consumer, false, opts.Timeout); err != nil {
				a.log.Error("resuming after a failed change-provider: run resume", "node", nodeName, "err", err)
			}
		}
	}()
	// the position, now that the worker stands still
	if st, err = getConsumerState(ctx, nodeDB, a.cfg.Queue, consumer); err != nil {
		return err
	}
	if err := waitForTick(ctx, provDB, a.cfg.Queue, st.completed, opts.Timeout); err != nil {
		return fmt.Errorf("new provider %s: %w", newProvider, err)
	}
	if _, err := call(ctx, provDB, a.log, "select * from pgq_node.register_location($1, $2, $3, false)", a.cfg.Queue, nodeName, me.Location); err != nil {
		return err
	}
	if consumer == n.WorkerName {
		_, err = call(ctx, provDB, a.log, "select * from pgq_node.register_subscriber($1, $2, $3, $4)", a.cfg.Queue, nodeName, consumer, st.completed)
	} else {
		_, err = provDB.Exec(ctx, "select pgq.register_consumer_at($1, $2, $3)", a.cfg.Queue, consumer, st.completed)
	}
	if err != nil {
		return fmt.Errorf("subscribing on %s at tick %d: %w", newProvider, st.completed, err)
	}
	if _, err := call(ctx, nodeDB, a.log, "select * from pgq_node.change_consumer_provider($1, $2, $3)", a.cfg.Queue, consumer, newProvider); err != nil {
		return err
	}
	if err := setPaused(ctx, nodeDB, a.log, a.cfg.Queue, consumer, false, opts.Timeout); err != nil {
		return err
	}
	resumed = true
	if old != "" {
		if oldDB, _, err := a.member(ctx, old); err != nil {
			a.log.Warn("old provider unreachable: unsubscribe there by hand", "node", old, "err", err)
		} else {
			if consumer == n.WorkerName {
				_, err = call(ctx, oldDB, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", a.cfg.Queue, nodeName)
			} else {
				_, err = oldDB.Exec(ctx, "select pgq.unregister_consumer($1, $2)", a.cfg.Queue, consumer)
			}
			oldDB.Close(context.Background())
			if err != nil {
				a.log.Warn("unsubscribing from the old provider", "node", old, "err", err)
			}
		}
	}
	a.log.Info("provider changed", "node", nodeName, "consumer", consumer, "from", old, "to", newProvider, "tick", st.completed)
	return nil
}

// refuseLoop fails when newProvider reads, directly or through others,
// from node: node would then read from its own copy.
func (a *Admin) refuseLoop(ctx context.Context, node, newProvider string) error {
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return err
	}
	cur := newProvider
	for range 64 {
		if cur == node {
			return fmt.Errorf("change-provider: %s reads from %s (directly or not): that would make a loop", newProvider, node)
		}
		if i := slices.IndexFunc(mems, func(m Member) bool { return m.Name == cur }); i >= 0 && mems[i].Dead {
			return nil // a dead node's subtree is being taken apart
		}
		c, _, err := a.member(ctx, cur)
		if err != nil {
			return err
		}
		n, err := nodeInfo(ctx, c, a.cfg.Queue)
		c.Close(context.Background())
		if err != nil {
			return err
		}
		if n.Type == "root" || n.ProviderNode == "" {
			return nil
		}
		cur = n.ProviderNode
	}
	return errors.New("change-provider: no root within 64 providers (a loop already?)")
}

// completeDeadRootTick makes the tick a branch's worker completed but its
// queue does not have, when that worker was killed between the commit of
// the tick's events and the tick (it makes it at its next batch, which
// never comes from a dead root). The root's time and event seq of that
// tick are gone with it: the tick gets the newest event time after the
// tick before and the highest event id since, as londiste3 fills in every
// branch tick.
func (a *Admin) completeDeadRootTick(ctx context.Context, n *liveNode) error {
	q := a.cfg.Queue
	c, _, err := a.member(ctx, n.Name)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	last, err := branchLastTick(ctx, c, q)
	if err != nil || last >= n.info.WorkerLastTick {
		return err
	}
	if last != n.info.WorkerLastTick-1 {
		return fmt.Errorf("its worker completed tick %d, its queue ends at tick %d: more than the one tick a killed worker can leave out", n.info.WorkerLastTick, last)
	}
	var pfx, snap string
	var t tickRow
	if err := c.QueryRow(ctx, `select q.queue_data_pfx, t.tick_snapshot::text, t.tick_time, t.tick_event_seq
	    from pgq.tick t join pgq.queue q on q.queue_id = t.tick_queue
	   where q.queue_name = $1 and t.tick_id = $2`, q, last).Scan(&pfx, &snap, &t.time, &t.seq); err != nil {
		return fmt.Errorf("its tick %d: %w", last, err)
	}
	// the queue's event tables are its data prefix's children
	var maxTime *time.Time
	var maxID *int64
	if err := c.QueryRow(ctx, `select max(ev_time), max(ev_id) from `+quotePgq(pfx)+`
	   where ev_txid >= txid_snapshot_xmin($1::txid_snapshot) and not txid_visible_in_snapshot(ev_txid, $1::txid_snapshot)`, snap).Scan(&maxTime, &maxID); err != nil {
		return fmt.Errorf("its events past tick %d: %w", last, err)
	}
	if maxTime != nil && maxTime.After(t.time) {
		t.time = *maxTime
	}
	if maxID != nil && *maxID > t.seq {
		t.seq = *maxID
	}
	t.id = n.info.WorkerLastTick
	a.log.Warn("takeover: making the tick a killed worker left out of a branch's queue (its time and event seq from the events, the root being gone)",
		"node", n.Name, "tick", t.id, "time", t.time, "event_seq", t.seq)
	if _, err := c.Exec(ctx, "select pgq.ticker($1, $2, $3, $4)", q, t.id, t.time, t.seq); err != nil {
		return fmt.Errorf("making its tick %d: %w", t.id, err)
	}
	return nil
}

// waitForTick waits until db's queue has the tick (or one past it).
func waitForTick(ctx context.Context, db *pgx.Conn, queue string, tick int64, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		last, err := branchLastTick(ctx, db, queue)
		if err != nil {
			return err
		}
		if last >= tick {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("its queue is at tick %d, not at %d, after %v", last, tick, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TakeoverOptions are takeover's options.
type TakeoverOptions struct {
	// All moves every other subscriber of the old node to this one first.
	All bool
	// DeadRoot and DeadBranch: the old node is down (a failover); Dead
	// names more nodes known to be down.
	DeadRoot, DeadBranch bool
	Dead                 []string
	// Timeout bounds each wait (acknowledgements, catching up).
	Timeout time.Duration
}

// Takeover makes this node take the place of node old (londiste3
// takeover, old node alive: a switchover). Old is the root: it is
// demoted in pgq_node's three steps (inserts refused, a last tick cut
// after the writers in flight, then a branch reading from this node),
// this node catches up to the last tick, is promoted and becomes old's
// provider. Old is a branch: old moves under this node (this node first
// leaving old's subtree when it is in it). With All, old's other
// subscribers move to this node first.
func (a *Admin) Takeover(ctx context.Context, old string, opts TakeoverOptions) error {
	if opts.Timeout <= 0 {
		opts.Timeout = time.Minute
	}
	me, err := a.node(ctx)
	if err != nil {
		return err
	}
	if old == me.Name {
		return errors.New("takeover: this node is the node to take over")
	}
	if opts.DeadRoot || opts.DeadBranch {
		return a.failover(ctx, me, old, opts)
	}
	oldDB, _, err := a.member(ctx, old)
	if err != nil {
		return fmt.Errorf("takeover: %w (if it is down: --dead-root or --dead-branch)", err)
	}
	defer oldDB.Close(context.Background())
	on, err := nodeInfo(ctx, oldDB, a.cfg.Queue)
	if err != nil {
		return err
	}
	if !on.Exists {
		return fmt.Errorf("takeover: %s: %w", old, ErrNoNode)
	}
	if me.Type == "leaf" {
		return errors.New("takeover: a leaf cannot take a node's place (it has no queue)")
	}
	if opts.All {
		subs, err := subscriberNames(ctx, oldDB, a.cfg.Queue)
		if err != nil {
			return err
		}
		for _, sub := range subs {
			if sub == me.Name {
				continue
			}
			if err := a.ChangeProvider(ctx, me.Name, ChangeProviderOptions{Node: sub, Timeout: opts.Timeout}); err != nil {
				return fmt.Errorf("takeover --all: moving %s: %w", sub, err)
			}
		}
	}
	if on.Type != "root" {
		return a.takeoverBranch(ctx, me, on, opts)
	}
	return a.takeoverRoot(ctx, me, on, oldDB, opts)
}

// takeoverRoot is a root switchover to this branch.
func (a *Admin) takeoverRoot(ctx context.Context, me, on *NodeInfo, oldDB *pgx.Conn, opts TakeoverOptions) error {
	q := a.cfg.Queue
	newDB, err := connect(ctx, a.cfg.DB)
	if err != nil {
		return err
	}
	defer newDB.Close(context.Background())
	step := func(db *pgx.Conn, what, sql string, args ...any) (Result, error) {
		r, err := call(ctx, db, a.log, sql, args...)
		if err != nil {
			return r, fmt.Errorf("takeover: %s: %w", what, err)
		}
		a.log.Info("takeover: " + what)
		return r, nil
	}
	if err := setPaused(ctx, oldDB, a.log, q, on.WorkerName, true, opts.Timeout); err != nil {
		return fmt.Errorf("takeover: pausing %s: %w", on.Name, err)
	}
	if _, err := step(oldDB, "old root refuses inserts (demote step 1)", "select * from pgq_node.demote_root($1, 1, $2)", q, me.Name); err != nil {
		_ = setPaused(context.WithoutCancel(ctx), oldDB, a.log, q, on.WorkerName, false, opts.Timeout)
		return err
	}
	began := time.Now()
	var last int64
	if err := oldDB.QueryRow(ctx, "select last_tick from pgq_node.demote_root($1, 2, $2)", q, me.Name).Scan(&last); err != nil {
		return fmt.Errorf("takeover: last tick on the old root (demote step 2): %w; the old root refuses inserts: run takeover again, or resume it by hand", err)
	}
	a.log.Info("takeover: last tick cut on the old root (demote step 2)", "tick", last)
	// its subscribers wake for it now, not at their next poll
	_, _ = oldDB.Exec(ctx, "select pg_notify('pgq_tick', $1)", notifyPayload(q))
	if me.WorkerPaused {
		if err := setPaused(ctx, newDB, a.log, q, me.WorkerName, false, opts.Timeout); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(opts.Timeout)
	for {
		n, err := nodeInfo(ctx, newDB, q)
		if err != nil {
			return err
		}
		if n.WorkerLastTick >= last {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("takeover: this node's worker at tick %d, not at the old root's last tick %d, after %v (is it running?); the old root refuses inserts: run takeover again when it is", n.WorkerLastTick, last, opts.Timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := setPaused(ctx, newDB, a.log, q, me.WorkerName, true, opts.Timeout); err != nil {
		return fmt.Errorf("takeover: pausing this node: %w", err)
	}
	if _, err := step(newDB, "this node promoted to root", "select * from pgq_node.promote_branch($1)", q); err != nil {
		return err
	}
	a.log.Info("takeover: inserts accepted here again", "unavailable", time.Since(began).Round(time.Millisecond))
	if _, err := step(newDB, "old root subscribed here", "select * from pgq_node.register_subscriber($1, $2, $3, $4)", q, on.Name, on.WorkerName, last); err != nil {
		return err
	}
	if me.ProviderNode != "" && me.ProviderNode != me.Name {
		if pdb, _, err := a.member(ctx, me.ProviderNode); err == nil {
			_, err = call(ctx, pdb, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", q, me.Name)
			pdb.Close(context.Background())
			if err != nil {
				a.log.Warn("takeover: unsubscribing from the former provider", "node", me.ProviderNode, "err", err)
			}
		}
	}
	if err := setPaused(ctx, newDB, a.log, q, me.WorkerName, false, opts.Timeout); err != nil {
		return err
	}
	if _, err := step(oldDB, "old root is a branch of this node (demote step 3)", "select * from pgq_node.demote_root($1, 3, $2)", q, me.Name); err != nil {
		return err
	}
	if err := setPaused(ctx, oldDB, a.log, q, on.WorkerName, false, opts.Timeout); err != nil {
		return fmt.Errorf("takeover: resuming %s: %w", on.Name, err)
	}
	a.log.Info("takeover: done", "new_root", me.Name, "old_root", on.Name, "tick", last)
	return nil
}

// takeoverBranch swaps this node and branch old: this node leaves old's
// subtree if it is in it (to old's provider), then old moves under this
// node.
func (a *Admin) takeoverBranch(ctx context.Context, me, on *NodeInfo, opts TakeoverOptions) error {
	under, err := a.dependsOn(ctx, me.Name, on.Name)
	if err != nil {
		return err
	}
	if under {
		if err := a.ChangeProvider(ctx, on.ProviderNode, ChangeProviderOptions{Node: me.Name, Timeout: opts.Timeout}); err != nil {
			return fmt.Errorf("takeover: moving this node to %s: %w", on.ProviderNode, err)
		}
	}
	if err := a.ChangeProvider(ctx, me.Name, ChangeProviderOptions{Node: on.Name, Timeout: opts.Timeout}); err != nil {
		return fmt.Errorf("takeover: moving %s here: %w", on.Name, err)
	}
	return nil
}

// dependsOn reports whether node reads, directly or not, from top.
func (a *Admin) dependsOn(ctx context.Context, node, top string) (bool, error) {
	cur := node
	for range 64 {
		c, _, err := a.member(ctx, cur)
		if err != nil {
			return false, err
		}
		n, err := nodeInfo(ctx, c, a.cfg.Queue)
		c.Close(context.Background())
		if err != nil {
			return false, err
		}
		if n.Type == "root" || n.ProviderNode == "" {
			return false, nil
		}
		if n.ProviderNode == top {
			return true, nil
		}
		cur = n.ProviderNode
	}
	return false, errors.New("no root within 64 providers")
}

// subscriberNames lists the nodes reading from db's node.
func subscriberNames(ctx context.Context, db queryer, queue string) ([]string, error) {
	rows, err := db.Query(ctx, "select node_name from pgq_node.get_subscriber_info($1) order by 1", queue)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// liveNode is a member that answered, with its node info.
type liveNode struct {
	Member
	info *NodeInfo
}

// liveNodes asks every member not tagged dead (and not in skip) for its
// node info; the ones that do not answer are left out, with a warning.
func (a *Admin) liveNodes(ctx context.Context, skip ...string) ([]liveNode, error) {
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return nil, err
	}
	var out []liveNode
	for _, m := range mems {
		if m.Dead || slices.Contains(skip, m.Name) {
			continue
		}
		c, _, err := a.member(ctx, m.Name)
		if err != nil {
			a.log.Warn("member unreachable, left as it is", "node", m.Name, "err", err)
			continue
		}
		n, err := nodeInfo(ctx, c, a.cfg.Queue)
		c.Close(context.Background())
		if err != nil || !n.Exists {
			a.log.Warn("member has no node here, left as it is", "node", m.Name, "err", err)
			continue
		}
		out = append(out, liveNode{m, n})
	}
	return out, nil
}

// failover puts this node in the place of a node that is down (takeover
// --dead-root / --dead-branch). The old node and Dead are tagged dead on
// every live node. Dead root: this node first catches up from the most
// advanced branch that read from the old root (events this node never got
// are there), is promoted, and keeps the old root's position as the
// subscriber '<old>.gravestone' (what resurrect looks for: every event
// past it never left the old root); then every node that read from the old
// root reads from this one. Dead branch: this node leaves the old branch's
// subtree if it is in it, and the old branch's subscribers move here.
// Nodes ahead of this one (they applied events it cannot get) are left
// where they are, with an error naming them.
func (a *Admin) failover(ctx context.Context, me *NodeInfo, old string, opts TakeoverOptions) error {
	q := a.cfg.Queue
	began := time.Now()
	if err := a.TagDead(ctx, true, append([]string{old}, opts.Dead...)...); err != nil {
		return fmt.Errorf("takeover: tagging %s dead: %w", old, err)
	}
	live, err := a.liveNodes(ctx, append([]string{old}, opts.Dead...)...)
	if err != nil {
		return err
	}
	var subs []liveNode // the old node's subscribers, but this node
	for _, n := range live {
		if n.info.ProviderNode == old && n.Name != me.Name {
			subs = append(subs, n)
		}
	}
	var ahead []string
	move := func(last int64) error {
		for _, s := range subs {
			if s.info.WorkerLastTick > last {
				ahead = append(ahead, fmt.Sprintf("%s (tick %d)", s.Name, s.info.WorkerLastTick))
				continue
			}
			if err := a.ChangeProvider(ctx, me.Name, ChangeProviderOptions{Node: s.Name, Timeout: opts.Timeout}); err != nil {
				return fmt.Errorf("takeover: moving %s here: %w", s.Name, err)
			}
		}
		if len(ahead) > 0 {
			return fmt.Errorf("takeover: done, but these nodes applied events this node never got and were left reading from %s: %v; resync their tables after moving them (change-provider)", old, ahead)
		}
		return nil
	}
	if opts.DeadBranch {
		if me.ProviderNode == old {
			up := ""
			for _, n := range live {
				if subs, err := a.subscribersOf(ctx, n.Name); err == nil && slices.Contains(subs, old) {
					up = n.Name
				}
			}
			if up == "" {
				return fmt.Errorf("takeover: no live node has %s as a subscriber: move this node with change-provider", old)
			}
			if err := a.ChangeProvider(ctx, up, ChangeProviderOptions{Timeout: opts.Timeout}); err != nil {
				return fmt.Errorf("takeover: moving this node to %s: %w", up, err)
			}
		}
		return move(1 << 62)
	}
	if me.Type != "branch" {
		return fmt.Errorf("takeover --dead-root: this node is a %s; run it on a branch", me.Type)
	}
	self, err := connect(ctx, a.cfg.DB)
	if err != nil {
		return err
	}
	defer self.Close(context.Background())
	last, err := branchLastTick(ctx, self, q)
	if err != nil {
		return err
	}
	// events past this node's last tick may have reached a sibling branch
	var best *liveNode
	for i, s := range subs {
		if s.info.Type == "branch" && s.info.WorkerLastTick > last && (best == nil || s.info.WorkerLastTick > best.info.WorkerLastTick) {
			best = &subs[i]
		}
	}
	if best != nil {
		a.log.Info("takeover: catching up from the most advanced branch", "node", best.Name, "its_tick", best.info.WorkerLastTick, "ours", last)
		if err := a.completeDeadRootTick(ctx, best); err != nil {
			return fmt.Errorf("takeover: catching up from %s: %w", best.Name, err)
		}
		if err := a.ChangeProvider(ctx, best.Name, ChangeProviderOptions{Timeout: opts.Timeout}); err != nil {
			return fmt.Errorf("takeover: catching up from %s: %w", best.Name, err)
		}
		if err := waitForTick(ctx, self, q, best.info.WorkerLastTick, opts.Timeout); err != nil {
			return fmt.Errorf("takeover: catching up from %s: %w", best.Name, err)
		}
		last = best.info.WorkerLastTick
	}
	if err := setPaused(ctx, self, a.log, q, me.WorkerName, true, opts.Timeout); err != nil {
		return fmt.Errorf("takeover: pausing this node: %w", err)
	}
	if _, err := call(ctx, self, a.log, "select * from pgq_node.promote_branch($1)", q); err != nil {
		return fmt.Errorf("takeover: promoting this node: %w", err)
	}
	a.log.Info("takeover: this node promoted to root", "tick", last, "after", time.Since(began).Round(time.Millisecond))
	if _, err := call(ctx, self, a.log, "select * from pgq_node.register_subscriber($1, $2, $3, $4)", q, old, old+".gravestone", last); err != nil {
		return fmt.Errorf("takeover: the old root's gravestone: %w", err)
	}
	if best != nil {
		if c, _, err := a.member(ctx, best.Name); err == nil {
			if _, err := call(ctx, c, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", q, me.Name); err != nil {
				a.log.Warn("takeover: unsubscribing from the branch caught up from", "node", best.Name, "err", err)
			}
			c.Close(context.Background())
		}
	}
	if err := setPaused(ctx, self, a.log, q, me.WorkerName, false, opts.Timeout); err != nil {
		return err
	}
	if err := move(last); err != nil {
		return err
	}
	a.log.Info("takeover: done", "new_root", me.Name, "dead_root", old, "tick", last, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

// subscribersOf lists the nodes reading from member name.
func (a *Admin) subscribersOf(ctx context.Context, name string) ([]string, error) {
	c, _, err := a.member(ctx, name)
	if err != nil {
		return nil, err
	}
	defer c.Close(context.Background())
	return subscriberNames(ctx, c, a.cfg.Queue)
}

// ResurrectFile is where Resurrect writes the events that never left an
// old root (londiste3's name, in the working directory).
const ResurrectFile = "resurrect-lost-events.json"

// ResurrectStats is what Resurrect did.
type ResurrectStats struct {
	NewRoot, Provider string // the cascade's root, and the node holding the gravestone
	Tick              int64  // the gravestone's tick: this node's stream was cut there
	Dumped, Deleted   int
	TicksDeleted      int64
}

// Resurrect brings an old root back after a failover (londiste3
// resurrect), run on it once it is up again: it finds the gravestone the
// takeover left (the subscriber '<this node>.gravestone' on the node that
// took over), demotes and pauses this node, drops its old subscribers and
// consumers, writes the events past the gravestone's tick (they never left
// this node) to dumpFile as JSON and deletes them and their ticks, and
// subscribes this node to the gravestone's node at that tick as a branch.
// Tables are not touched: the lost events' rows are still here, and the
// dump says which. The worker is left paused: resume it when that is dealt
// with.
func (a *Admin) Resurrect(ctx context.Context, dumpFile string) (*ResurrectStats, error) {
	q := a.cfg.Queue
	me, err := a.node(ctx)
	if err != nil {
		return nil, err
	}
	if me.Type == "leaf" {
		return nil, errors.New("resurrect: this node is a leaf, nothing to do")
	}
	if _, err := os.Lstat(dumpFile); err == nil {
		return nil, fmt.Errorf("resurrect: %s exists (an earlier resurrection's dump?): move it away first", dumpFile)
	}
	grave := me.Name + ".gravestone"
	st := &ResurrectStats{}
	mems, err := members(ctx, a.db, q)
	if err != nil {
		return nil, err
	}
	for _, m := range mems {
		if m.Name == me.Name {
			continue
		}
		c, err := a.remote(ctx, m.Location)
		if err != nil {
			a.log.Info("resurrect: node unreachable, skipped", "node", m.Name)
			continue
		}
		var tick *int64
		err = c.QueryRow(ctx, "select max(last_tick) from pgq.get_consumer_info($1) where consumer_name = $2", q, grave).Scan(&tick)
		n, nerr := nodeInfo(ctx, c, q)
		c.Close(context.Background())
		if err != nil || nerr != nil {
			a.log.Warn("resurrect: could not look on node", "node", m.Name, "err", errors.Join(err, nerr))
			continue
		}
		if tick != nil {
			if st.Provider != "" {
				return nil, fmt.Errorf("resurrect: two gravestones, on %s and %s", st.Provider, m.Name)
			}
			st.Provider, st.Tick = m.Name, *tick
		}
		if n.Type == "root" {
			st.NewRoot = m.Name
		}
	}
	if st.NewRoot == "" {
		return nil, errors.New("resurrect: no other node is the root")
	}
	if st.Provider == "" {
		return nil, fmt.Errorf("resurrect: no gravestone (%s) found: was this node taken over with --dead-root?", grave)
	}
	a.log.Info("resurrect: gravestone found", "node", st.Provider, "tick", st.Tick, "root", st.NewRoot)
	db := a.db
	if me.Type == "root" {
		for _, step := range []int{1, 2} {
			if _, err := call(ctx, db, a.log, "select * from pgq_node.demote_root($1, $2, $3)", q, step, st.Provider); err != nil {
				return nil, fmt.Errorf("resurrect: demote step %d: %w", step, err)
			}
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			return nil, err
		}
		defer tx.Rollback(context.Background())
		if _, err := call(ctx, tx, a.log, "select * from pgq_node.demote_root($1, 3, $2)", q, st.Provider); err != nil {
			return nil, fmt.Errorf("resurrect: demote step 3: %w", err)
		}
		if _, err := call(ctx, tx, a.log, "select * from pgq_node.set_consumer_paused($1, $2, true)", q, me.WorkerName); err != nil {
			return nil, err
		}
		if err := tx.Commit(ctx); err != nil {
			return nil, err
		}
	} else if !me.WorkerPaused {
		// no waiting for the worker's answer: it may be down
		if _, err := call(ctx, db, a.log, "select * from pgq_node.set_consumer_paused($1, $2, true)", q, me.WorkerName); err != nil {
			return nil, err
		}
	}
	subs, err := subscriberNames(ctx, db, q)
	if err != nil {
		return nil, err
	}
	for _, s := range subs {
		if _, err := call(ctx, db, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", q, s); err != nil {
			return nil, fmt.Errorf("resurrect: dropping old subscriber %s: %w", s, err)
		}
	}
	rows, err := db.Query(ctx, "select consumer_name from pgq.get_consumer_info($1) where consumer_name not like '.%'", q)
	if err != nil {
		return nil, err
	}
	cons, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	for _, c := range cons {
		if _, err := db.Exec(ctx, "select pgq.unregister_consumer($1, $2)", q, c); err != nil {
			return nil, fmt.Errorf("resurrect: dropping old consumer %s: %w", c, err)
		}
	}
	if err := a.dumpLostEvents(ctx, st, dumpFile); err != nil {
		return nil, err
	}
	if _, err := call(ctx, db, a.log, "select * from pgq_node.set_consumer_completed($1, $2, $3)", q, me.WorkerName, st.Tick); err != nil {
		return nil, err
	}
	prov, _, err := a.member(ctx, st.Provider)
	if err != nil {
		return nil, err
	}
	defer prov.Close(context.Background())
	if _, err := call(ctx, prov, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", q, me.Name); err != nil {
		return nil, fmt.Errorf("resurrect: removing the gravestone: %w", err)
	}
	var gwm int64
	if err := prov.QueryRow(ctx, "select global_watermark from pgq_node.register_subscriber($1, $2, $3, $4)", q, me.Name, me.WorkerName, st.Tick).Scan(&gwm); err != nil {
		return nil, fmt.Errorf("resurrect: subscribing on %s: %w", st.Provider, err)
	}
	if _, err := call(ctx, db, a.log, "select * from pgq_node.set_global_watermark($1, $2)", q, gwm); err != nil {
		return nil, err
	}
	a.log.Info("resurrect: done; the worker is paused", "provider", st.Provider, "tick", st.Tick, "dumped", st.Dumped, "deleted", st.Deleted)
	return st, nil
}

// dumpLostEvents writes the events of this node's queue past the
// gravestone's tick to file (a JSON array, londiste3's fields), then
// deletes exactly those events and the ticks after the gravestone's.
func (a *Admin) dumpLostEvents(ctx context.Context, st *ResurrectStats, file string) error {
	q := a.cfg.Queue
	db := a.db
	me, err := a.node(ctx)
	if err != nil {
		return err
	}
	dumper := me.Name + ".dumper"
	if _, err := db.Exec(ctx, "select pgq.register_consumer_at($1, $2, $3)", q, dumper, st.Tick); err != nil {
		return fmt.Errorf("resurrect: the dumper at tick %d: %w", st.Tick, err)
	}
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	enc := json.NewEncoder(f)
	sep := "["
	var ids, txids []int64
	final := st.Tick
	for {
		var batch *int64
		var prev, cur *int64
		if err := db.QueryRow(ctx, "select batch_id, prev_tick_id, cur_tick_id from pgq.next_batch_info($1, $2)", q, dumper).Scan(&batch, &prev, &cur); err != nil {
			return err
		}
		if batch == nil {
			break
		}
		rows, err := db.Query(ctx, `select ev_id, ev_time, ev_txid, ev_retry, ev_type, ev_data, ev_extra1, ev_extra2, ev_extra3, ev_extra4
		  from pgq.get_batch_events($1)`, *batch)
		if err != nil {
			return err
		}
		for rows.Next() {
			var e struct {
				ID     int64     `json:"ev_id"`
				Type   *string   `json:"ev_type"`
				Data   *string   `json:"ev_data"`
				Extra1 *string   `json:"ev_extra1"`
				Extra2 *string   `json:"ev_extra2"`
				Extra3 *string   `json:"ev_extra3"`
				Extra4 *string   `json:"ev_extra4"`
				Time   time.Time `json:"ev_time"`
				TxID   int64     `json:"ev_txid"`
				Retry  *int32    `json:"ev_retry"`
				Tick   int64     `json:"tick_id"`
				Prev   int64     `json:"prev_tick_id"`
			}
			if err := rows.Scan(&e.ID, &e.Time, &e.TxID, &e.Retry, &e.Type, &e.Data, &e.Extra1, &e.Extra2, &e.Extra3, &e.Extra4); err != nil {
				rows.Close()
				return err
			}
			e.Tick, e.Prev = *cur, *prev
			if _, err := fmt.Fprintf(f, "%s\n", sep); err != nil {
				rows.Close()
				return err
			}
			sep = ","
			if err := enc.Encode(e); err != nil {
				rows.Close()
				return err
			}
			ids, txids = append(ids, e.ID), append(txids, e.TxID)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if _, err := db.Exec(ctx, "select pgq.finish_batch($1)", *batch); err != nil {
			return err
		}
		final = *cur
	}
	if sep == "[" {
		sep = "[\n"
	} else {
		sep = ""
	}
	if _, err := fmt.Fprintf(f, "%s]\n", sep); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	st.Dumped = len(ids)
	if _, err := db.Exec(ctx, "select pgq.unregister_consumer($1, $2)", q, dumper); err != nil {
		return err
	}
	if final == st.Tick {
		return nil
	}
	tx, err := db.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	var pfx string
	if err := tx.QueryRow(ctx, "select queue_data_pfx from pgq.queue where queue_name = $1", q).Scan(&pfx); err != nil {
		return err
	}
	tag, err := tx.Exec(ctx, "delete from "+quotePgq(pfx)+
		" where (ev_id, ev_txid) in (select * from unnest($1::bigint[], $2::bigint[]))", ids, txids)
	if err != nil {
		return fmt.Errorf("resurrect: deleting the dumped events: %w", err)
	}
	st.Deleted = int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, `delete from pgq.tick t using pgq.queue x where x.queue_name = $1 and t.tick_queue = x.queue_id
	    and t.tick_id > $2 and t.tick_id <= $3`, q, st.Tick, final)
	if err != nil {
		return err
	}
	st.TicksDeleted = tag.RowsAffected()
	return tx.Commit(ctx)
}
