package replica

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/ini.v1"
)

// Config is a londiste3 ini file: the [londiste] section (Skytools 3.2's
// files call it [londiste3]; both are read), with londiste3's keys and
// defaults. Keys londiste3 reads but pgqgo has no use for (its log format
// and rotation, skylog, sql_retry) are accepted and listed in Ignored; an
// unknown key is an error, so a typo never falls back to a default.
type Config struct {
	Path    string
	JobName string
	// DB is the local node's connect string.
	DB    string
	Queue string
	// Consumer is the worker's consumer name (default: JobName).
	Consumer string
	LogFile  string
	PidFile  string
	// LoopDelay is the pause between idle work loops (default 1 s).
	LoopDelay time.Duration
	// ParallelCopies is how many tables are copied at once: as written in
	// the ini, 8 when it is not (londiste3's default is 1, each copy being a
	// process of its own; pgqgo's are goroutines of the worker).
	ParallelCopies int
	// CopyStreams is how many ranges a big table's copy is split into,
	// each read under the same exported snapshot and written by its own
	// connection: threaded_copy_pool_size when it is over 1, else the
	// worker machine's CPUs (at least 2, at most 8: the worker usually
	// runs beside the server it writes to).
	// Tables of at least splitCopySize on the provider are split, and
	// those matching SplitCopyTables (threaded_copy_tables) whatever
	// their size.
	CopyStreams     int
	SplitCopyTables []string
	// LocalOnly asks the provider only for events of the tables this node
	// replicates (and control events); LocalOnlyDropExecute also leaves
	// EXECUTE events out.
	LocalOnly            bool
	LocalOnlyDropExecute bool
	// LockTimeout bounds add-table's statements and compare/repair's wait
	// for the root's lock (default 10 s).
	LockTimeout time.Duration
	// ExceptionSleep is the pause after a failed batch (default 20 s).
	ExceptionSleep     time.Duration
	ConnectionLifetime time.Duration
	// FetchSize is pgq_lazy_fetch: events read at a time (0: the whole batch).
	FetchSize int
	// MinCount, MinInterval, MinLag: pgq_batch_collect_events,
	// pgq_batch_collect_interval, pgq_keep_lag (next_batch_custom).
	MinCount    int
	MinInterval time.Duration
	MinLag      time.Duration
	// TableFilter limits the events read to these tables (ev_extra1).
	TableFilter []string
	// GlobalWMPublishPeriod and LocalWMPublishPeriod: watermark publishing.
	GlobalWMPublishPeriod time.Duration
	LocalWMPublishPeriod  time.Duration
	// RegisterOnly*/RegisterSkip*: which set members this node registers.
	RegisterOnlyTables, RegisterSkipTables []string
	RegisterOnlySeqs, RegisterSkipSeqs     []string
	// NodeName, PublicNodeLocation, InitialProviderLocation: defaults for
	// create-root and create-leaf.
	NodeName                string
	PublicNodeLocation      string
	InitialProviderLocation string
	// RemoteExtraConnstr is appended to other nodes' connect strings.
	RemoteExtraConnstr string
	// CompareSQL and CompareFmt override compare's checksum query and output.
	CompareSQL string
	CompareFmt string
	// HandlerModules lists londiste3's extra handler modules; pgqgo has the
	// default handler only, so tables using another one are refused.
	HandlerModules []string
	// MetricsAddr (pgqgo key): serve Prometheus /metrics there.
	MetricsAddr string
	// TrustedRoles (pgqgo key, as the ticker's): roles besides the
	// worker's own and superusers whose pgq, pgq_node and londiste schemas
	// the worker calls.
	TrustedRoles []string
	// Ignored lists the keys read and left alone.
	Ignored []string
}

// the keys londiste3 (skytools' BaseScript) reads that pgqgo accepts and
// ignores, with why in docs/replication.md
var ignoredKeys = map[string]bool{
	"log_size": true, "log_count": true, "use_skylog": true, "skylog_locations": true,
	"logfmt_console": true, "logfmt_file": true, "logdatefmt_console": true, "logdatefmt_file": true,
	"logfmt_console_verbose": true, "logfmt_file_verbose": true, "logdatefmt_console_verbose": true,
	"logdatefmt_file_verbose": true, "exception_quiet": true, "exception_grace": true, "exception_reset": true,
	"sql_retry": true, "sql_retry_max_count": true, "sql_retry_max_time": true, "sql_retry_formula_a": true,
	"sql_retry_formula_b": true, "sql_retry_formula_cap": true, "keepalive_stats": true, "pgq_autocommit": true,
	"config_format":   true,
	"shard_hash_func": true, "shard_info_sql": true, "obfuscator_map": true, "obfuscator_key": true,
	// defaults skytools puts in every section
	"job_name": true, "service_name": true, "host_name": true, "config_dir": true, "config_file": true,
}

// LoadConfig reads a londiste3 ini file; set overrides keys (--set
// KEY=VALUE on the command line).
func LoadConfig(path string, set map[string]string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(path, data, set)
}

// ParseConfig parses ini text read from path (path gives the default
// job_name, as in londiste3: the file's name without extension).
func ParseConfig(path string, data []byte, set map[string]string) (*Config, error) {
	f, err := ini.LoadSources(ini.LoadOptions{SpaceBeforeInlineComment: true, KeyValueDelimiters: "=:"}, data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	var sec *ini.Section
	for _, name := range []string{"londiste", "londiste3"} {
		if s, err := f.GetSection(name); err == nil {
			sec = s
			break
		}
	}
	if sec == nil {
		return nil, fmt.Errorf("config %s: no [londiste] section", path)
	}
	abs, _ := filepath.Abs(path)
	defaults := map[string]string{
		"job_name":     strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)),
		"service_name": "londiste",
		"config_dir":   filepath.Dir(abs),
		"config_file":  abs,
	}
	if h, err := os.Hostname(); err == nil {
		defaults["host_name"] = h
	}
	for k, v := range set {
		sec.Key(k).SetValue(v)
	}
	for k, v := range defaults {
		if !sec.HasKey(k) {
			if _, err := sec.NewKey(k, v); err != nil {
				return nil, fmt.Errorf("config %s: %w", path, err)
			}
		}
	}
	cfg := &Config{
		Path: path, LoopDelay: time.Second, ParallelCopies: 8, CopyStreams: min(max(runtime.NumCPU(), 2), 8), LockTimeout: 10 * time.Second,
		ExceptionSleep: 20 * time.Second, ConnectionLifetime: 1200 * time.Second, FetchSize: 300,
		GlobalWMPublishPeriod: 300 * time.Second, LocalWMPublishPeriod: 300 * time.Second,
	}
	var errs []error
	val := func(k *ini.Key) string { return strings.TrimSpace(k.String()) }
	seconds := func(k *ini.Key, dst *time.Duration) {
		v, err := strconv.ParseFloat(val(k), 64)
		if err != nil || v < 0 {
			errs = append(errs, fmt.Errorf("%s = %q: want a number of seconds", k.Name(), val(k)))
			return
		}
		*dst = time.Duration(v * float64(time.Second))
	}
	integer := func(k *ini.Key, dst *int, least int) {
		n, err := strconv.Atoi(val(k))
		if err != nil || n < least {
			errs = append(errs, fmt.Errorf("%s = %q: want an integer >= %d", k.Name(), val(k), least))
			return
		}
		*dst = n
	}
	boolean := func(k *ini.Key, dst *bool) {
		switch strings.ToLower(val(k)) {
		case "1", "true", "yes", "on":
			*dst = true
		case "0", "false", "no", "off", "":
			*dst = false
		default:
			errs = append(errs, fmt.Errorf("%s = %q: want 0 or 1", k.Name(), val(k)))
		}
	}
	list := func(k *ini.Key) []string {
		var out []string
		for _, s := range strings.Split(val(k), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	for _, k := range sec.Keys() {
		switch k.Name() {
		case "job_name":
			cfg.JobName = val(k)
		case "db":
			cfg.DB = val(k)
			if _, err := pgx.ParseConfig(cfg.DB); err != nil {
				errs = append(errs, fmt.Errorf("db: %w", err))
			}
		case "queue_name", "pgq_queue_name":
			cfg.Queue = val(k)
		case "consumer_name", "pgq_consumer_id":
			cfg.Consumer = val(k)
		case "logfile":
			cfg.LogFile = expandHome(val(k))
		case "pidfile":
			cfg.PidFile = expandHome(val(k))
		case "loop_delay":
			seconds(k, &cfg.LoopDelay)
		case "parallel_copies":
			integer(k, &cfg.ParallelCopies, 1)
		case "threaded_copy_pool_size":
			var n int
			integer(k, &n, 1)
			if n > 1 {
				cfg.CopyStreams = n
			}
		case "threaded_copy_tables":
			cfg.SplitCopyTables = list(k)
		case "local_only":
			boolean(k, &cfg.LocalOnly)
		case "local_only_drop_execute":
			boolean(k, &cfg.LocalOnlyDropExecute)
		case "lock_timeout":
			seconds(k, &cfg.LockTimeout)
		case "exception_sleep":
			seconds(k, &cfg.ExceptionSleep)
		case "connection_lifetime":
			seconds(k, &cfg.ConnectionLifetime)
		case "pgq_lazy_fetch":
			integer(k, &cfg.FetchSize, 0)
		case "pgq_batch_collect_events":
			integer(k, &cfg.MinCount, 0)
		case "pgq_batch_collect_interval":
			seconds(k, &cfg.MinInterval)
		case "pgq_keep_lag":
			seconds(k, &cfg.MinLag)
		case "table_filter":
			cfg.TableFilter = list(k)
		case "global_wm_publish_period":
			seconds(k, &cfg.GlobalWMPublishPeriod)
		case "local_wm_publish_period":
			seconds(k, &cfg.LocalWMPublishPeriod)
		case "register_only_tables":
			cfg.RegisterOnlyTables = list(k)
		case "register_skip_tables":
			cfg.RegisterSkipTables = list(k)
		case "register_only_seqs":
			cfg.RegisterOnlySeqs = list(k)
		case "register_skip_seqs":
			cfg.RegisterSkipSeqs = list(k)
		case "node_name":
			cfg.NodeName = val(k)
		case "public_node_location":
			cfg.PublicNodeLocation = val(k)
		case "initial_provider_location":
			cfg.InitialProviderLocation = val(k)
		case "remote_extra_connstr":
			cfg.RemoteExtraConnstr = val(k)
		case "compare_sql":
			cfg.CompareSQL = val(k)
		case "compare_fmt":
			cfg.CompareFmt = val(k)
		case "handler_modules":
			cfg.HandlerModules = list(k)
		case "metrics_addr":
			cfg.MetricsAddr = val(k)
		case "trusted_roles":
			cfg.TrustedRoles = list(k)
		default:
			if ignoredKeys[k.Name()] {
				if _, isDefault := defaults[k.Name()]; !isDefault {
					cfg.Ignored = append(cfg.Ignored, k.Name())
				}
				continue
			}
			errs = append(errs, fmt.Errorf("unknown key %q in [%s]", k.Name(), sec.Name()))
		}
	}
	if cfg.DB == "" {
		errs = append(errs, errors.New("db is not set"))
	}
	if cfg.Queue == "" {
		errs = append(errs, errors.New("queue_name is not set"))
	}
	if cfg.Consumer == "" {
		cfg.Consumer = cfg.JobName
	}
	if cfg.MinInterval > 0 || cfg.MinCount > 0 {
		// londiste3 drops them for the copy hand-off too; pgqgo keeps it simple
		errs = append(errs, errors.New("pgq_batch_collect_events/pgq_batch_collect_interval: not supported by pgqgo londiste (the provider already merges the small batches of a worker that lags)"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return cfg, nil
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}
