package statuspage

import (
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"
)

//go:embed page.html
var pageHTML string

//go:embed page.js
var pageJS []byte

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"dur": func(d time.Duration) string {
		switch {
		case d >= time.Hour:
			return d.Round(time.Minute).String()
		case d >= time.Minute:
			return d.Round(time.Second).String()
		default:
			return d.Round(10 * time.Millisecond).String()
		}
	},
	"rate": func(v float64) string { return fmt.Sprintf("%.1f", v) },
}).Parse(pageHTML))

// Options of the handler.
type Options struct {
	// Title heads the page (e.g. "pgqgo ticker on host:5432").
	Title string
	// User and Password, when both set, require HTTP basic auth.
	User, Password string
}

// Handler serves the page at "/", its tables alone at "/fragment", its
// script at "/status.js" and the data at "/api/status" (the latest snapshot
// and, with ?history=1, every series).
// Read-only: every other method is refused.
func Handler(c *Collector, opts Options) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = page.Execute(w, struct {
			Title string
			Snapshot
		}{opts.Title, c.Latest()})
	})
	mux.HandleFunc("/fragment", func(w http.ResponseWriter, _ *http.Request) {
		// the tables alone, for the script's refresh
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = page.ExecuteTemplate(w, "live", c.Latest())
	})
	mux.HandleFunc("/status.js", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
		_, _ = w.Write(pageJS)
	})
	mux.HandleFunc("/api/status", func(w http.ResponseWriter, r *http.Request) {
		out := struct {
			Snapshot
			History []Series `json:"history,omitempty"`
		}{Snapshot: c.Latest()}
		if r.URL.Query().Get("history") != "" {
			out.History = c.History()
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(out)
	})
	var h http.Handler = mux
	h = readOnly(h)
	if opts.User != "" && opts.Password != "" {
		h = BasicAuth(h, opts.User, opts.Password)
	}
	return securityHeaders(h)
}

func readOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// BasicAuth requires HTTP basic auth with user and password before next.
func BasicAuth(next http.Handler, user, password string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || subtle.ConstantTimeCompare([]byte(u), []byte(user)) != 1 ||
			subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="pgqgo status", charset="UTF-8"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders: the page loads nothing from elsewhere and may not be framed.
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}

// ParseAuth splits "user:password" (an ini or flag value) for Options.
func ParseAuth(s string) (user, password string, err error) {
	if s == "" {
		return "", "", nil
	}
	user, password, ok := strings.Cut(s, ":")
	if !ok || user == "" || password == "" {
		return "", "", fmt.Errorf("want user:password")
	}
	return user, password, nil
}
