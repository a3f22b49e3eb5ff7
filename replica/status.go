package replica

import (
	"context"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// NodeStatus is what status shows of one node.
type NodeStatus struct {
	Name, Type, Provider, Worker string
	LastTick                     int64
	Paused, Uptodate             bool
	Lag                          *time.Duration // nil: unknown
	Attrs                        map[string]string
	Errors                       map[string]string // cur_error by cascaded consumer
	TablesOK, TablesHalf         int
	TablesIgnored                int
	Copies                       []TableStatus
	Err                          string // the node could not be read
	Dead                         bool

	consumers map[string]time.Time // tick time of each consumer of its queue
	now       time.Time
	head      time.Time // its queue's last tick's time
}

// TableStatus is a table that is not ok yet.
type TableStatus struct {
	Name, State string
	Progress    *CopyProgress `json:",omitempty"` // the running COPY, if any
}

// Status reads every member of the cascade (in parallel) as londiste3
// status does.
func (a *Admin) Status(ctx context.Context) (string, []*NodeStatus, error) {
	local, err := a.node(ctx)
	if err != nil {
		return "", nil, err
	}
	mems, err := members(ctx, a.db, a.cfg.Queue)
	if err != nil {
		return "", nil, err
	}
	out := make([]*NodeStatus, len(mems))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i, m := range mems {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ns := &NodeStatus{Name: m.Name, Dead: m.Dead}
			out[i] = ns
			if m.Dead {
				ns.Err = "node is tagged dead"
				return
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := a.readNodeStatus(cctx, m.Location, ns); err != nil {
				ns.Err = err.Error()
			}
		}()
	}
	wg.Wait()
	byName := map[string]*NodeStatus{}
	var root *NodeStatus
	for _, n := range out {
		byName[n.Name] = n
		if n.Type == "root" {
			root = n
		}
	}
	for _, n := range out {
		if n.Type == "root" || n.Err != "" {
			continue
		}
		if p := byName[n.Provider]; p != nil && root != nil {
			if tt, ok := p.consumers[n.Worker]; ok {
				lag := max(root.now.Sub(tt), 0)
				n.Lag = &lag
			}
		}
	}
	return local.Name, out, nil
}

func (a *Admin) readNodeStatus(ctx context.Context, location string, ns *NodeStatus) error {
	db, err := a.remote(ctx, location)
	if err != nil {
		return err
	}
	defer db.Close(context.Background())
	n, err := nodeInfo(ctx, db, a.cfg.Queue)
	if err != nil {
		return err
	}
	if !n.Exists {
		return fmt.Errorf("not a node of queue %s", a.cfg.Queue)
	}
	ns.Type, ns.Provider, ns.Worker, ns.LastTick = n.Type, n.ProviderNode, n.WorkerName, n.WorkerLastTick
	ns.Paused, ns.Uptodate = n.WorkerPaused, n.WorkerUptodate
	if n.NodeAttrs != "" {
		ns.Attrs = map[string]string{}
		v, _ := url.ParseQuery(n.NodeAttrs)
		for k := range v {
			ns.Attrs[k] = v.Get(k)
		}
	}
	if err := db.QueryRow(ctx, "select now()").Scan(&ns.now); err != nil {
		return err
	}
	if n.Type != "leaf" {
		rows, err := db.Query(ctx, "select consumer_name, now() - lag from pgq.get_consumer_info($1)", a.cfg.Queue)
		if err != nil {
			return err
		}
		ns.consumers = map[string]time.Time{}
		for rows.Next() {
			var c string
			var t time.Time
			if err := rows.Scan(&c, &t); err != nil {
				rows.Close()
				return err
			}
			ns.consumers[c] = t
		}
		if err := rows.Err(); err != nil {
			return err
		}
		var lag time.Duration
		if err := db.QueryRow(ctx, "select ticker_lag from pgq.get_queue_info($1)", a.cfg.Queue).Scan(&lag); err == nil {
			ns.head = ns.now.Add(-lag)
			if n.Type == "root" {
				ns.Lag = &lag
			}
		}
	}
	rows, err := db.Query(ctx, "select consumer_name, cur_error from pgq_node.get_consumer_info($1) where cur_error is not null", a.cfg.Queue)
	if err != nil {
		return err
	}
	for rows.Next() {
		var c, e string
		if err := rows.Scan(&c, &e); err != nil {
			rows.Close()
			return err
		}
		if ns.Errors == nil {
			ns.Errors = map[string]string{}
		}
		ns.Errors[c] = e
	}
	if err := rows.Err(); err != nil {
		return err
	}
	tables, err := tableList(ctx, db, a.cfg.Queue)
	if err != nil {
		return err
	}
	progress := map[string]CopyProgress{}
	if ps, err := copyProgress(ctx, db); err == nil {
		for _, p := range ps {
			progress[p.Table] = p
		}
	}
	for _, t := range tables {
		switch {
		case !t.Local:
			ns.TablesIgnored++
		case t.MergeState == "ok":
			ns.TablesOK++
		default:
			ns.TablesHalf++
			ts := TableStatus{Name: t.Name, State: stateName(t.MergeState)}
			// pg_stat_progress_copy names the table as regclass text
			for _, name := range []string{t.Dest(), strings.TrimPrefix(t.Dest(), "public.")} {
				if p, ok := progress[name]; ok {
					ts.Progress = &p
				}
			}
			ns.Copies = append(ns.Copies, ts)
		}
	}
	return nil
}

// ival is londiste3's interval format: 1d2h3m4s, seconds always.
func ival(d time.Duration) string {
	s := int64(d / time.Second)
	days, s := s/86400, s%86400
	h, s := s/3600, s%3600
	m, s := s/60, s%60
	var b strings.Builder
	if days > 0 {
		fmt.Fprintf(&b, "%dd", days)
	}
	if h > 0 {
		fmt.Fprintf(&b, "%dh", h)
	}
	if m > 0 {
		fmt.Fprintf(&b, "%dm", m)
	}
	fmt.Fprintf(&b, "%ds", s)
	return b.String()
}

// Lines are the node's info lines under its title, as londiste3 prints them.
func (n *NodeStatus) Lines() []string {
	if n.Err != "" {
		return []string{"ERR: " + n.Err}
	}
	lines := []string{fmt.Sprintf("Tables: %d/%d/%d", n.TablesOK, n.TablesHalf, n.TablesIgnored)}
	txt := "Lag: (n/a)"
	if n.Lag != nil {
		txt = "Lag: " + ival(*n.Lag)
	}
	if n.LastTick != 0 {
		txt += fmt.Sprintf(", Tick: %d", n.LastTick)
	}
	if n.Paused {
		txt += ", PAUSED"
	}
	if !n.Uptodate {
		txt += ", NOT UPTODATE"
	}
	lines = append(lines, txt)
	keys := make([]string, 0, len(n.Attrs))
	for k := range n.Attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lines = append(lines, fmt.Sprintf("Attr: %s=%s", k, n.Attrs[k]))
	}
	for _, c := range n.Copies {
		if c.Progress != nil {
			lines = append(lines, fmt.Sprintf("Copy: %s %s %s", c.Name, c.State, c.Progress))
		} else {
			lines = append(lines, fmt.Sprintf("Copy: %s %s", c.Name, c.State))
		}
	}
	cs := make([]string, 0, len(n.Errors))
	for c := range n.Errors {
		cs = append(cs, c)
	}
	sort.Strings(cs)
	for _, c := range cs {
		e, _, _ := strings.Cut(n.Errors[c], "\n")
		lines = append(lines, fmt.Sprintf("ERR: %s: %s", c, e))
	}
	return lines
}

// Title is "name (type)".
func (n *NodeStatus) Title() string {
	if n.Type == "" {
		return n.Name + " (?)"
	}
	return fmt.Sprintf("%s (%s)", n.Name, n.Type)
}

// RenderTree draws the cascade the way londiste3 status does: each node's
// title on a +--: branch, its info lines beside the tree below it.
func RenderTree(queue, local string, nodes []*NodeStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Queue: %s   Local node: %s\n\n", queue, local)
	children := map[string][]*NodeStatus{}
	byName := map[string]*NodeStatus{}
	for _, n := range nodes {
		byName[n.Name] = n
	}
	var roots []*NodeStatus
	for _, n := range nodes {
		if n.Type != "root" && n.Provider != "" && n.Provider != n.Name && byName[n.Provider] != nil {
			children[n.Provider] = append(children[n.Provider], n)
		} else {
			roots = append(roots, n)
		}
	}
	for _, c := range children {
		sort.Slice(c, func(i, j int) bool { return c[i].Name < c[j].Name })
	}
	sort.Slice(roots, func(i, j int) bool {
		if (roots[i].Type == "root") != (roots[j].Type == "root") {
			return roots[i].Type == "root"
		}
		return roots[i].Name < roots[j].Name
	})
	setpfx := func(pfx, sfx string) string {
		if pfx == "" {
			return ""
		}
		return pfx[:len(pfx)-1] + sfx
	}
	var walk func(n *NodeStatus, pfx string, data []string) []string
	walk = func(n *NodeStatus, pfx string, data []string) []string {
		for _, ln := range data {
			fmt.Fprintf(&b, "%-30s%s\n", setpfx(pfx, "|"), ln)
		}
		data = n.Lines()
		fmt.Fprintf(&b, "%s%s\n", setpfx(pfx, "+--: "), n.Title())
		kids := children[n.Name]
		for i, c := range kids {
			sfx := "   "
			if i < len(kids)-1 {
				sfx = "  |"
			}
			data = walk(c, pfx+sfx, data)
		}
		return data
	}
	for _, r := range roots {
		for _, ln := range walk(r, "", nil) {
			fmt.Fprintf(&b, "%-30s%s\n", " ", ln)
		}
	}
	return b.String()
}

// Problems lists what status --check reports: unreadable or dead nodes,
// consumer errors, paused workers, lag over maxLag.
func Problems(nodes []*NodeStatus, maxLag time.Duration) []string {
	var out []string
	for _, n := range nodes {
		switch {
		case n.Err != "":
			out = append(out, fmt.Sprintf("%s: %s", n.Name, n.Err))
			continue
		case n.Paused:
			out = append(out, n.Name+": paused")
		}
		for c, e := range n.Errors {
			out = append(out, fmt.Sprintf("%s: %s: %s", n.Name, c, e))
		}
		if n.Lag != nil && maxLag > 0 && *n.Lag > maxLag {
			out = append(out, fmt.Sprintf("%s: lag %s over %s", n.Name, ival(*n.Lag), ival(maxLag)))
		}
		// a consumer of this node's queue that stays behind keeps every
		// event since its position: rotation waits for it (a stopped node
		// below, through its watermark consumer, or the cascade's global
		// watermark)
		if maxLag > 0 {
			for c, tt := range n.consumers {
				if age := n.head.Sub(tt); !n.head.IsZero() && age > maxLag {
					out = append(out, fmt.Sprintf("%s: consumer %s at a tick %s older than the queue's last holds its events (rotation waits for it)%s",
						n.Name, c, ival(age), holder(c)))
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// holder says which node a consumer name stands for.
func holder(consumer string) string {
	switch {
	case consumer == ".global_watermark":
		return ": the slowest node of the cascade"
	case strings.HasPrefix(consumer, ".") && strings.HasSuffix(consumer, ".watermark"):
		return ": node " + strings.TrimSuffix(strings.TrimPrefix(consumer, "."), ".watermark")
	}
	return ""
}
