package replica

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// ExecAttrs are an EXECUTE script's "--*-- Key: value, ..." attributes,
// which decide on which nodes it runs (londiste3's exec_attrs).
type ExecAttrs struct {
	keys   []string            // in first-seen order
	values map[string][]string // by lower-case key
}

// the keys, in the order londiste3 probes them
var execAttrKeys = []string{"local-table", "local-sequence", "local-destination", "need-table",
	"need-sequence", "need-function", "need-schema", "need-view"}

func (a *ExecAttrs) add(k, v string) error {
	k = strings.ToLower(strings.TrimSpace(k))
	if !contains(execAttrKeys, k) {
		return fmt.Errorf("EXECUTE attribute: invalid key %q", k)
	}
	if a.values == nil {
		a.values = map[string][]string{}
	}
	if _, ok := a.values[k]; !ok {
		a.keys = append(a.keys, k)
	}
	a.values[k] = append(a.values[k], strings.TrimSpace(v))
	return nil
}

// ParseExecAttrs reads the attributes from the leading comment lines of a
// script; a line ending in a comma continues on the next.
func ParseExecAttrs(sql string) (*ExecAttrs, error) {
	a := &ExecAttrs{}
	cont := ""
	for _, ln := range strings.Split(sql, "\n") {
		ln = strings.TrimSpace(ln)
		if ln == "" {
			continue
		}
		if !strings.HasPrefix(ln, "--") {
			break
		}
		if !strings.HasPrefix(ln, "--*--") {
			continue
		}
		ln = strings.TrimSpace(ln[len("--*--"):])
		if ln == "" {
			continue
		}
		key, vals := cont, ln
		if cont == "" {
			k, v, ok := strings.Cut(ln, ":")
			if !ok {
				continue
			}
			key, vals = strings.TrimSpace(k), v
		}
		for _, v := range strings.Split(vals, ",") {
			if v = strings.TrimSpace(v); v != "" {
				if err := a.add(key, v); err != nil {
					return nil, err
				}
			}
		}
		if strings.HasSuffix(ln, ",") {
			cont = key
		} else {
			cont = ""
		}
	}
	return a, nil
}

// parseExecAttrsURL decodes the urlencoded form carried in ev_extra2.
func parseExecAttrsURL(s string) (*ExecAttrs, error) {
	a := &ExecAttrs{}
	if s == "" {
		return a, nil
	}
	for _, part := range strings.Split(s, "&") {
		k, v, _ := strings.Cut(part, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return nil, err
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return nil, err
		}
		for _, x := range strings.Split(val, ",") {
			if err := a.add(key, x); err != nil {
				return nil, err
			}
		}
	}
	return a, nil
}

// URLEncode is the form stored in execute_attrs and in the EXECUTE event.
func (a *ExecAttrs) URLEncode() string {
	var parts []string
	for _, k := range a.keys {
		parts = append(parts, url.QueryEscape(k)+"="+url.QueryEscape(strings.Join(a.values[k], ",")))
	}
	return strings.Join(parts, "&")
}

// needExecute decides whether the script runs here: every condition holds
// (yes), none does (no), or some do and some do not (an error: the node is
// half set up for it).
func (a *ExecAttrs) needExecute(ctx context.Context, db queryer, tables map[string]string, seqs map[string]bool) (bool, error) {
	if len(a.keys) == 0 {
		return true, nil
	}
	var good, miss []string
	for _, k := range execAttrKeys {
		for _, v := range a.values[k] {
			ok, err := execMatch(ctx, db, k, v, tables, seqs)
			if err != nil {
				return false, err
			}
			if ok {
				good = append(good, v)
			} else {
				miss = append(miss, v)
			}
		}
	}
	switch {
	case len(miss) == 0:
		return true, nil
	case len(good) == 0:
		return false, nil
	}
	return false, fmt.Errorf("SQL only partially matches local setup: matches=%v misses=%v", good, miss)
}

func execMatch(ctx context.Context, db queryer, key, name string, tables map[string]string, seqs map[string]bool) (bool, error) {
	exists := func(sql string, args ...any) (bool, error) {
		var ok bool
		err := db.QueryRow(ctx, sql, args...).Scan(&ok)
		return ok, err
	}
	relation := func(n string, kinds ...string) (bool, error) {
		n = fqName(n)
		s, r, _ := strings.Cut(n, ".")
		return exists(`select exists (select 1 from pg_class c join pg_namespace ns on ns.oid = c.relnamespace
		   where ns.nspname = $1 and c.relname = $2 and c.relkind = any ($3))`, s, r, kinds)
	}
	switch key {
	case "local-table":
		_, ok := tables[fqName(name)]
		return ok, nil
	case "local-sequence":
		return seqs[fqName(name)], nil
	case "local-destination":
		dest, ok := tables[fqName(name)]
		if !ok {
			return false, nil
		}
		return relation(dest, "r", "p")
	case "need-table":
		return relation(name, "r", "p")
	case "need-sequence":
		return relation(name, "S")
	case "need-view":
		return relation(name, "v", "m")
	case "need-schema":
		return exists("select exists (select 1 from pg_namespace where nspname = $1)", name)
	case "need-function":
		fn, nargs := name, 0
		if i := strings.Index(name, "("); i > 0 {
			if j := strings.Index(name, ")"); j > i {
				n, err := strconv.Atoi(name[i+1 : j])
				if err != nil {
					return false, fmt.Errorf("Need-Function %q: %w", name, err)
				}
				fn, nargs = name[:i], n
			}
		}
		fn = fqName(fn)
		s, f, _ := strings.Cut(fn, ".")
		return exists(`select exists (select 1 from pg_proc p join pg_namespace ns on ns.oid = p.pronamespace
		   where ns.nspname = $1 and p.proname = $2 and p.pronargs = $3)`, s, f, nargs)
	}
	return false, nil
}

// processSQL replaces @name@ of Local-* attributes with the local names.
func (a *ExecAttrs) processSQL(sql string, tables map[string]string, seqs map[string]bool) (string, error) {
	for _, k := range []string{"local-table", "local-sequence", "local-destination"} {
		for _, v := range a.values[k] {
			fq := fqName(v)
			local := ""
			if d, ok := tables[fq]; ok {
				local = d
			} else if seqs[fq] {
				local = fq
			} else {
				return "", fmt.Errorf("EXECUTE: %s is not local here", v)
			}
			sql = strings.ReplaceAll(sql, "@"+v+"@", quoteFQ(local))
		}
	}
	return sql, nil
}
