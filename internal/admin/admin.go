package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// State is a component's lifecycle state.
type State string

// The states a component moves through. Starting → Running ⇄ Degraded →
// Stopping → Stopped, or Failed when it gives up and a human must act.
const (
	Starting State = "starting"
	Running  State = "running"
	Degraded State = "degraded" // working but waiting on a dependency (retrying)
	Stopping State = "stopping"
	Stopped  State = "stopped"
	Failed   State = "failed"
)

// Component is the handle through which one pipeline component reports its
// state. Its methods are safe for concurrent use.
type Component struct {
	name  string
	ready prometheus.Gauge

	mu       sync.Mutex
	state    State
	since    time.Time
	detail   string
	lastErr  string
	errAt    time.Time
	position string
}

// Set moves the component to state with a short human-readable detail (what
// it is doing or waiting for). Detail must not carry personal data.
func (c *Component) Set(state State, detail string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != state {
		c.since = time.Now()
	}
	c.state, c.detail = state, detail
	if state == Running {
		c.ready.Set(1)
	} else {
		c.ready.Set(0)
	}
}

// Error records the last error seen, without changing the state. The error
// text must name keys, never alert text.
func (c *Component) Error(err error) {
	if err == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr, c.errAt = err.Error(), time.Now()
}

// Position records the component's current source position, as text.
func (c *Component) Position(pos string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.position = pos
}

// Status is the JSON view of a component served at /status.
type Status struct {
	Name      string    `json:"name"`
	State     State     `json:"state"`
	Since     time.Time `json:"since"`
	Detail    string    `json:"detail,omitempty"`
	Position  string    `json:"position,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	ErrorAt   time.Time `json:"last_error_at,omitzero"`
}

// Status returns a snapshot of the component.
func (c *Component) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Status{Name: c.name, State: c.state, Since: c.since, Detail: c.detail,
		Position: c.position, LastError: c.lastErr, ErrorAt: c.errAt}
}

// Server is the admin HTTP server.
type Server struct {
	log       *slog.Logger
	reg       *prometheus.Registry
	ready     *prometheus.GaugeVec
	listen    string
	drain     time.Duration
	mux       *http.ServeMux
	mu        sync.Mutex
	comps     map[string]*Component
	ln        net.Listener
	indexPage http.Handler // nil: the plain-text index
	listenErr error
	listened  chan struct{} // closed once Serve has listened or failed to
}

// New returns a server for listen (host:port; port 0 picks a free one) whose
// graceful shutdown waits at most drain. Its registry already holds the Go
// runtime and process collectors.
func New(listen string, drain time.Duration, logger *slog.Logger) *Server {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "alertsync", Name: "component_ready",
		Help: "1 while the component is running and ready, else 0.",
	}, []string{"component"})
	reg.MustRegister(ready)
	s := &Server{log: logger, reg: reg, ready: ready, listen: listen, drain: drain,
		mux: http.NewServeMux(), comps: map[string]*Component{}, listened: make(chan struct{})}
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.mux.HandleFunc("GET /status", s.status)
	s.mux.HandleFunc("GET /{$}", s.index)
	return s
}

// Registry is the component's Prometheus registry; register metrics here.
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// Handle adds a handler, for pages served beside the standard endpoints.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// SetIndex replaces the plain-text page served at / with h (the demo's
// status page). Call it before Serve. Default: a plain-text list of the
// endpoints.
func (s *Server) SetIndex(h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.indexPage = h
}

// EnablePprof serves Go's runtime profiles under /debug/pprof/ (admin.pprof).
func (s *Server) EnablePprof() {
	s.mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	s.mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	s.mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	s.mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	s.mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}

// Component registers (or returns) the component called name, in state Starting.
func (s *Server) Component(name string) *Component {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.comps[name]; ok {
		return c
	}
	c := &Component{name: name, ready: s.ready.WithLabelValues(name), state: Starting, since: time.Now()}
	s.comps[name] = c
	return c
}

// Statuses returns every component's status, sorted by name.
func (s *Server) Statuses() []Status {
	s.mu.Lock()
	out := make([]Status, 0, len(s.comps))
	for _, c := range s.comps {
		out = append(out, c.Status())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Addr waits until Serve listens and returns its address, or Serve's listen error.
func (s *Server) Addr(ctx context.Context) (string, error) {
	select {
	case <-s.listened:
		if s.listenErr != nil {
			return "", s.listenErr
		}
		return s.ln.Addr().String(), nil
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// Serve listens and serves until ctx is cancelled, then shuts down gracefully.
// A listen error (port in use) is returned at once, naming the address.
func (s *Server) Serve(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.listen)
	if err != nil {
		s.listenErr = fmt.Errorf("admin server listening on %s (admin.listen): %w", s.listen, err)
		close(s.listened)
		return s.listenErr
	}
	s.ln = ln
	close(s.listened)
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.log.Info("admin server listening", "addr", ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("admin server: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.drain)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return fmt.Errorf("admin server shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin server: %w", err)
	}
	return nil
}

type probe struct {
	OK         bool     `json:"ok"`
	Components []Status `json:"components"`
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	st := s.Statuses()
	ok := true
	for _, c := range st {
		ok = ok && c.State != Failed
	}
	writeProbe(w, ok, st)
}

func (s *Server) readyz(w http.ResponseWriter, _ *http.Request) {
	st := s.Statuses()
	ok := len(st) > 0
	for _, c := range st {
		ok = ok && c.State == Running
	}
	writeProbe(w, ok, st)
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Statuses())
}

func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	h := s.indexPage
	s.mu.Unlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = fmt.Fprintln(w, "alertsync admin: /metrics /healthz /readyz /status")
}

func writeProbe(w http.ResponseWriter, ok bool, st []Status) {
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(probe{OK: ok, Components: st})
}
