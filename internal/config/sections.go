package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// Admin is the admin HTTP server of a long-running component.
type Admin struct {
	Listen string `key:"listen" default:"127.0.0.1:9464" doc:"Address of the admin HTTP server serving /metrics, /healthz and /readyz. Use :9464 to listen on every interface (containers)."`
	Pprof  bool   `key:"pprof" default:"false" doc:"Also serve Go's runtime profiles under /debug/pprof/ (CPU, heap, goroutines) on the admin server, for performance work. They reveal no alert data but cost CPU while taken; keep the admin address private."`
}

// Validate checks the listen address.
func (a *Admin) Validate() error {
	if _, _, err := net.SplitHostPort(a.Listen); err != nil {
		return &KeyError{Key: "listen", Err: fmt.Errorf("invalid address %q (want host:port, e.g. 127.0.0.1:9464)", a.Listen)}
	}
	return nil
}

// Log configures structured logging.
type Log struct {
	Level  string `key:"level" default:"info" enum:"debug,info,warn,error" doc:"Lowest level logged."`
	Format string `key:"format" default:"json" enum:"json,text" doc:"Log line format: json (one object per line) or text."`
}

// SlogLevel returns the slog level of l.Level (info when unknown).
func (l Log) SlogLevel() slog.Level {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		return slog.LevelInfo
	}
	return lvl
}

// Registry is the Confluent-compatible schema registry.
type Registry struct {
	URL      string        `key:"url" default:"http://localhost:8081" doc:"Schema registry base URL (Confluent-compatible)."`
	Username string        `key:"username" doc:"Registry basic-auth user, if the registry requires one."`
	Password Secret        `key:"password" doc:"Registry basic-auth password."`
	Timeout  time.Duration `key:"timeout" default:"10s" doc:"Timeout of one registry request."`
}

// Validate checks the URL.
func (r *Registry) Validate() error {
	u, err := url.Parse(r.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return &KeyError{Key: "url", Err: fmt.Errorf("invalid URL %q (want http(s)://host:port)", RedactDSN(r.URL))}
	}
	if u.User != nil {
		return &KeyError{Key: "url", Err: errors.New("credentials in the URL are refused; use registry.username and ALERTSYNC_REGISTRY_PASSWORD")}
	}
	if r.Password.IsSet() && r.Username == "" {
		return &KeyError{Key: "username", Err: errors.New("required when a registry password is set")}
	}
	return nil
}

// DPS is the DPS alerts database (PostgreSQL).
type DPS struct {
	DSN      string `key:"dsn" default:"postgres://alertsync@localhost:5432/alerts?sslmode=prefer" doc:"DPS database connection string (URL or key=value). Put the password in dps.password, not here."`
	Password Secret `key:"password" doc:"DPS database password; overrides any password in dps.dsn."`
}

// Validate checks the DSN is present.
func (d *DPS) Validate() error { return validateDSN(d.DSN) }

// NOMIS is the NOMIS database: Oracle, or the PostgreSQL stand-in.
type NOMIS struct {
	DSN      string `key:"dsn" default:"postgres://alertsync@localhost:5433/nomis?sslmode=prefer" doc:"NOMIS connection string: an Oracle connect string for the oracle dialect, a PostgreSQL URL for the postgres stand-in. Put the password in nomis.password."`
	Dialect  string `key:"dialect" default:"postgres" enum:"oracle,postgres" doc:"SQL dialect of the NOMIS database: oracle (production) or postgres (the PostgreSQL-hosted stand-in for local runs and tests)."`
	Password Secret `key:"password" doc:"NOMIS database password; overrides any password in nomis.dsn."`
}

// Validate checks the DSN is present.
func (n *NOMIS) Validate() error { return validateDSN(n.DSN) }

func validateDSN(dsn string) error {
	if strings.TrimSpace(dsn) == "" {
		return &KeyError{Key: "dsn", Err: errors.New("required")}
	}
	return nil
}

// Shutdown bounds a component's drain on SIGINT/SIGTERM.
type Shutdown struct {
	Timeout time.Duration `key:"timeout" default:"30s" doc:"Longest a component drains in-flight work after SIGINT/SIGTERM before it exits."`
}

// Validate refuses a non-positive timeout.
func (s *Shutdown) Validate() error {
	if s.Timeout <= 0 {
		return &KeyError{Key: "timeout", Err: fmt.Errorf("must be positive, got %s", s.Timeout)}
	}
	return nil
}

var (
	kvPassword     = regexp.MustCompile(`(?i)(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)`)
	oracleUserPass = regexp.MustCompile(`^([^/@\s=]+)/([^@\s]+)@`)
)

// RedactDSN hides the password of a URL or key=value connection string, so
// that a DSN can be logged or printed.
func RedactDSN(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.Scheme != "" && u.User != nil {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
			s := u.String()
			return strings.Replace(s, "xxxxx", redacted, 1)
		}
		return dsn
	}
	if q := strings.Index(dsn, "?"); q >= 0 {
		if v, err := url.ParseQuery(dsn[q+1:]); err == nil && v.Has("password") {
			v.Set("password", redacted)
			return dsn[:q+1] + v.Encode()
		}
	}
	dsn = oracleUserPass.ReplaceAllString(dsn, "${1}/"+redacted+"@")
	return kvPassword.ReplaceAllString(dsn, "${1}"+redacted)
}
