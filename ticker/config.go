package ticker

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"gopkg.in/ini.v1"

	"github.com/pgqgo/pgqgo/statuspage"
)

// Config is the [pgqd] section of a pgqd ini file, plus pgqgo's own keys.
// Durations are given in seconds (fractions allowed), as pgqd reads them.
type Config struct {
	LogFile            string
	PidFile            string
	BaseConnStr        string
	InitialDatabase    string
	DatabaseList       []string // empty: every database that accepts connections
	Syslog             bool
	SyslogIdent        string
	CheckPeriod        time.Duration
	RetryPeriod        time.Duration
	MaintPeriod        time.Duration
	TickerPeriod       time.Duration
	StatsPeriod        time.Duration
	ConnectionLifetime time.Duration

	// pgqgo keys (absent from pgqd's files; defaults apply)

	// TickPollPeriod is how often an active database is checked for new
	// events to tick at once (low-latency ticking). 0 turns it off: then only
	// pgq.ticker() runs, every ticker_period, as pgqd does.
	TickPollPeriod time.Duration
	// TickIdlePollPeriod is the check interval for databases that had no new
	// events for a while.
	TickIdlePollPeriod time.Duration
	// TickMinInterval is the least time between two low-latency ticks of one
	// queue: the interval of a quiet queue.
	TickMinInterval time.Duration
	// TickMaxInterval bounds the interval of a busy queue, which widens with
	// its event rate (1 ms per 50 events/s) from TickMinInterval.
	TickMaxInterval time.Duration
	// MaxParallel bounds the database calls the daemon makes at once.
	MaxParallel int
	// MetricsAddr, when set, serves /metrics (Prometheus), /healthz and the
	// status page (/) there.
	MetricsAddr string
	// StatusAuth, "user:password", makes the status page (and /metrics,
	// /healthz on the same address) require HTTP basic auth.
	StatusAuth string
	// LogFormat is "text" (default) or "json".
	LogFormat string
	// TrustedRoles are the roles, besides the daemon's own and superusers,
	// whose pgq schemas and maintenance functions the daemon will run (see
	// docs/ticker.md "Whose code the daemon runs").
	TrustedRoles []string
}

// Defaults returns pgqd's defaults and pgqgo's.
func Defaults() Config {
	return Config{
		InitialDatabase:    "template1",
		Syslog:             true,
		SyslogIdent:        "pgqd",
		CheckPeriod:        60 * time.Second,
		RetryPeriod:        30 * time.Second,
		MaintPeriod:        120 * time.Second,
		TickerPeriod:       time.Second,
		StatsPeriod:        30 * time.Second,
		ConnectionLifetime: time.Hour,
		TickPollPeriod:     5 * time.Millisecond,
		TickIdlePollPeriod: 500 * time.Millisecond,
		TickMinInterval:    5 * time.Millisecond,
		TickMaxInterval:    50 * time.Millisecond,
		MaxParallel:        8,
		LogFormat:          "text",
	}
}

// LoadConfig reads the [pgqd] section of an ini file. Unknown keys are errors,
// so a typo does not silently fall back to a default.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return ParseConfig(data)
}

// ParseConfig parses ini text (see LoadConfig).
func ParseConfig(data []byte) (Config, error) {
	cfg := Defaults()
	f, err := ini.LoadSources(ini.LoadOptions{AllowPythonMultilineValues: false, SpaceBeforeInlineComment: true}, data)
	if err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	sec, err := f.GetSection("pgqd")
	if err != nil {
		return cfg, errors.New("config: no [pgqd] section")
	}
	var errs []error
	seconds := func(key string, dst *time.Duration, allowZero bool) {
		v, err := strconv.ParseFloat(sec.Key(key).String(), 64)
		if err != nil || v < 0 || (v == 0 && !allowZero) {
			errs = append(errs, fmt.Errorf("%s = %q: want a positive number of seconds", key, sec.Key(key).String()))
			return
		}
		*dst = time.Duration(v * float64(time.Second))
	}
	for _, k := range sec.Keys() {
		v := strings.TrimSpace(k.String())
		switch k.Name() {
		case "logfile":
			cfg.LogFile = expandHome(v)
		case "pidfile":
			cfg.PidFile = expandHome(v)
		case "base_connstr":
			if _, err := pgx.ParseConfig(v); err != nil {
				errs = append(errs, fmt.Errorf("base_connstr: %w", err))
			}
			cfg.BaseConnStr = v
		case "initial_database":
			cfg.InitialDatabase = v
		case "database_list":
			cfg.DatabaseList = nil
			for _, d := range strings.Split(v, ",") {
				if d = strings.TrimSpace(d); d != "" {
					cfg.DatabaseList = append(cfg.DatabaseList, d)
				}
			}
		case "syslog":
			b, err := parseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("syslog = %q: %w", v, err))
			}
			cfg.Syslog = b
		case "syslog_ident":
			cfg.SyslogIdent = v
		case "check_period":
			seconds(k.Name(), &cfg.CheckPeriod, false)
		case "retry_period":
			seconds(k.Name(), &cfg.RetryPeriod, false)
		case "maint_period":
			seconds(k.Name(), &cfg.MaintPeriod, false)
		case "ticker_period":
			seconds(k.Name(), &cfg.TickerPeriod, false)
		case "stats_period":
			seconds(k.Name(), &cfg.StatsPeriod, false)
		case "connection_lifetime":
			seconds(k.Name(), &cfg.ConnectionLifetime, false)
		case "tick_poll_period":
			seconds(k.Name(), &cfg.TickPollPeriod, true)
		case "tick_idle_poll_period":
			seconds(k.Name(), &cfg.TickIdlePollPeriod, false)
		case "tick_min_interval":
			seconds(k.Name(), &cfg.TickMinInterval, true)
		case "tick_max_interval":
			seconds(k.Name(), &cfg.TickMaxInterval, true)
		case "max_parallel":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("max_parallel = %q: want a positive integer", v))
			}
			cfg.MaxParallel = n
		case "trusted_roles":
			cfg.TrustedRoles = nil
			for _, r := range strings.Split(v, ",") {
				if r = strings.TrimSpace(r); r != "" {
					cfg.TrustedRoles = append(cfg.TrustedRoles, r)
				}
			}
		case "metrics_addr":
			cfg.MetricsAddr = v
		case "status_auth":
			if _, _, err := statuspage.ParseAuth(v); err != nil {
				errs = append(errs, fmt.Errorf("status_auth: %w", err))
			}
			cfg.StatusAuth = v
		case "log_format":
			if v != "text" && v != "json" {
				errs = append(errs, fmt.Errorf("log_format = %q: want text or json", v))
			}
			cfg.LogFormat = v
		default:
			errs = append(errs, fmt.Errorf("unknown key %q in [pgqd]", k.Name()))
		}
	}
	if cfg.TickMaxInterval < cfg.TickMinInterval {
		errs = append(errs, fmt.Errorf("tick_max_interval (%v) is below tick_min_interval (%v)", cfg.TickMaxInterval, cfg.TickMinInterval))
	}
	if err := errors.Join(errs...); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "1", "true", "yes", "on":
		return true, nil
	case "0", "false", "no", "off", "":
		return false, nil
	}
	return false, errors.New("want 0 or 1")
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}

// SampleINI is printed by `pgqgo ticker --ini`.
const SampleINI = `[pgqd]

# where to log
logfile = /var/log/postgresql/pgqd.log

# pidfile
pidfile = /var/run/postgresql/pgqd.pid

## optional parameters ##

# libpq connect string without dbname=
#base_connstr =

# startup db to query other databases
#initial_database = template1

# limit ticker to specific databases
#database_list =

# log into syslog
#syslog = 1
#syslog_ident = pgqd

## optional timeouts ##

# how often to check for new databases
#check_period = 60

# how often to flush retry queue
#retry_period = 30

# how often to do maintentance
#maint_period = 120

# how often to run ticker
#ticker_period = 1

# how often to log stats
#stats_period = 30

# reconnect after this many seconds
#connection_lifetime = 3600

## pgqgo additions ##

# low-latency ticking: check active databases this often for new events and
# tick them at once (0 = off, tick only every ticker_period like pgqd)
#tick_poll_period = 0.005
# check interval for databases without recent events
#tick_idle_poll_period = 0.5
# least time between two low-latency ticks of one queue (a quiet queue's)
#tick_min_interval = 0.005
# a busy queue's interval widens by 1 ms per 50 events/s up to this
#tick_max_interval = 0.05

# at most this many database calls at once
#max_parallel = 8

# serve Prometheus /metrics, /healthz and the status page (/) on this
# address (off when empty)
#metrics_addr = 127.0.0.1:9188
# require HTTP basic auth there (user:password)
#status_auth =

# text or json
#log_format = text

# besides the daemon's own role and superusers, the roles whose pgq schemas
# and maintenance functions the daemon may run (comma-separated); a database
# whose pgq objects belong to anyone else is refused and logged
#trusted_roles =
`
