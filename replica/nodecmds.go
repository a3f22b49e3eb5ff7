package replica

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Queue is the node's queue name.
func (a *Admin) Queue() string { return a.cfg.Queue }

// Node is the local node's pgq_node info.
func (a *Admin) Node(ctx context.Context) (*NodeInfo, error) { return a.node(ctx) }

// NodeInfoText is node-info's output, as londiste3 prints it.
func (a *Admin) NodeInfoText(ctx context.Context) (string, error) {
	n, err := a.node(ctx)
	if err != nil {
		return "", err
	}
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return "", err
	}
	var me *Member
	for i := range mems {
		if mems[i].Name == n.Name {
			me = &mems[i]
		}
	}
	var st []string
	if me != nil && me.Dead {
		st = append(st, "DEAD")
	}
	if n.WorkerPaused {
		st = append(st, "PAUSED")
	}
	if !n.WorkerUptodate {
		st = append(st, "NON-UP-TO-DATE")
	}
	status := strings.Join(st, ", ")
	if status == "" {
		status = "OK"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Node: %s  Type: %s  Queue: %s\n", n.Name, n.Type, a.cfg.Queue)
	fmt.Fprintf(&b, "Status: %s\n", status)
	if n.Type != "root" {
		fmt.Fprintf(&b, "Provider: %s\n", n.ProviderNode)
	} else {
		b.WriteString("Provider: --\n")
	}
	b.WriteString("Connect strings:\n")
	fmt.Fprintf(&b, "  Local   : %s\n", redact(a.cfg.DB))
	if me != nil {
		fmt.Fprintf(&b, "  Public  : %s\n", redact(me.Location))
	}
	if n.Type != "root" {
		fmt.Fprintf(&b, "  Provider: %s\n", redact(n.ProviderLoc))
	}
	if n.CombinedQueue != "" {
		fmt.Fprintf(&b, "Combined Queue: %s  (node type: %s)\n", n.CombinedQueue, n.CombinedType)
	}
	return b.String(), nil
}

// WaitUpstream waits until the local worker has passed the provider's
// (or, with root, the root's) current last tick.
func (a *Admin) WaitUpstream(ctx context.Context, root bool, limit time.Duration) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	if n.Type == "root" {
		a.log.Info("this node is the root: nothing to wait for")
		return nil
	}
	loc := n.ProviderLoc
	if root {
		c, err := a.findRoot(ctx, loc)
		if err != nil {
			return err
		}
		c.Close(ctx)
		mems, err := members(ctx, a.db, a.cfg.Queue)
		if err != nil {
			return err
		}
		for _, m := range mems {
			if rn, err := a.remote(ctx, m.Location); err == nil {
				info, err := nodeInfo(ctx, rn, a.cfg.Queue)
				rn.Close(ctx)
				if err == nil && info.Type == "root" {
					loc = m.Location
					break
				}
			}
		}
	}
	up, err := a.remote(ctx, loc)
	if err != nil {
		return err
	}
	var tick int64
	err = up.QueryRow(ctx, "select last_tick_id from pgq.get_queue_info($1)", a.cfg.Queue).Scan(&tick)
	up.Close(ctx)
	if err != nil {
		return err
	}
	a.log.Info("waiting for the worker to pass tick", "tick", tick)
	var deadline time.Time
	if limit > 0 {
		deadline = time.Now().Add(limit)
	}
	for {
		n, err := a.node(ctx)
		if err != nil {
			return err
		}
		if n.WorkerLastTick >= tick {
			return nil
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			return fmt.Errorf("worker at tick %d, not %d, after %v", n.WorkerLastTick, tick, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DropNode removes a leaf, or a branch nobody reads from, from the
// cascade: unregistered on its provider and the root (which tells
// everyone), and dropped on the node itself.
func (a *Admin) DropNode(ctx context.Context, name string) error {
	n, err := a.node(ctx)
	if err != nil {
		return err
	}
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return err
	}
	var target *Member
	for i := range mems {
		if mems[i].Name == name {
			target = &mems[i]
		}
	}
	if target == nil {
		return fmt.Errorf("node %q is not a member", name)
	}
	// the node's own view: its type and provider
	var tn *NodeInfo
	if name == n.Name {
		tn = n
	} else if c, err := a.remote(ctx, target.Location); err == nil {
		tn, err = nodeInfo(ctx, c, a.cfg.Queue)
		if err == nil && tn.Type == "branch" {
			err = refuseSubscribers(ctx, c, a.cfg.Queue, name)
		}
		c.Close(ctx)
		if err != nil {
			return err
		}
	} else {
		return fmt.Errorf("node %s unreachable: %w", name, err)
	}
	if tn.Type == "root" {
		return errors.New("drop-node: the root cannot be dropped while it has members")
	}
	if name == n.Name && tn.Type == "branch" {
		if err := refuseSubscribers(ctx, a.db, a.cfg.Queue, name); err != nil {
			return err
		}
	}
	// on the provider: the subscriber goes (its consumers with it)
	if tn.ProviderLoc != "" {
		if c, err := a.remote(ctx, tn.ProviderLoc); err == nil {
			_, err = call(ctx, c, a.log, "select * from pgq_node.unregister_subscriber($1, $2)", a.cfg.Queue, name)
			c.Close(ctx)
			if err != nil {
				a.log.Warn("unregister on the provider", "err", err)
			}
		}
	}
	for _, m := range mems {
		c, err := a.remote(ctx, m.Location)
		if err != nil {
			a.log.Warn("member unreachable", "node", m.Name, "err", err)
			continue
		}
		info, err := nodeInfo(ctx, c, a.cfg.Queue)
		if err == nil && info.Type == "root" {
			if _, err := call(ctx, c, a.log, "select * from pgq_node.unregister_location($1, $2)", a.cfg.Queue, name); err != nil {
				a.log.Warn("unregister_location on the root", "err", err)
			}
		}
		if _, err := call(ctx, c, a.log, "select * from pgq_node.drop_node($1, $2)", a.cfg.Queue, name); err != nil {
			a.log.Warn("drop_node", "node", m.Name, "err", err)
		}
		c.Close(ctx)
	}
	return nil
}

// HandlerHelp is show-handlers' output.
const HandlerHelp = `londiste
    The default handler: each row event is applied as one INSERT, UPDATE or DELETE on the
    table (or its --dest-table), in the original order; TRUNCATE events empty the table.
    pgqgo sends them as prepared statements, pipelined.

vtable (alias fake_local)
    A table that is registered as local but has no data here: no copy, events ignored.

Other londiste3 handlers (bulk, dispatch and its presets, part, shard, qtable, qsplitter,
applyfn, multimaster, obfuscate) are not in pgqgo yet: tables that use them are refused.
`

// SampleINI is printed by pgqgo londiste --ini.
const SampleINI = `[londiste]

## required ##

# job name: the log's name and the worker's consumer name
job_name = londiste_leaf

# the local node's database
db = dbname=leafdb host=127.0.0.1

# the cascaded queue
queue_name = replika

## optional ##

logfile = ~/log/%(job_name)s.log
pidfile = ~/pid/%(job_name)s.pid

# sleep between idle loops (seconds)
#loop_delay = 1.0

# tables copied at once
#parallel_copies = 1

# ask the provider only for the events of local tables
#local_only = 0

# statement timeout of add-table; the longest compare/repair lock wait
#lock_timeout = 10

# pause after an error (seconds)
#exception_sleep = 20

# appended to other nodes' connect strings (user=, sslmode=, ...)
#remote_extra_connstr =

# defaults for create-root / create-leaf
#node_name =
#public_node_location =
#initial_provider_location =

# how often the node's position is published to its provider / the
# root's global watermark to the cascade (seconds)
#local_wm_publish_period = 300
#global_wm_publish_period = 300

## pgqgo additions ##

# serve Prometheus /metrics here (off when empty)
#metrics_addr = 127.0.0.1:9189
`

// refuseSubscribers fails when nodes still read from the branch name.
func refuseSubscribers(ctx context.Context, db queryer, queue, name string) error {
	subs, err := subscriberNames(ctx, db, queue)
	if err != nil {
		return err
	}
	if len(subs) > 0 {
		return fmt.Errorf("drop-node: %s still has subscribers (%s): move them first (change-provider)", name, strings.Join(subs, ", "))
	}
	return nil
}
