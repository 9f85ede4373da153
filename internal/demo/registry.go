package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// schemaEntry is one registered schema version as kept in schemas.json.
type schemaEntry struct {
	Subject    string               `json:"subject"`
	Version    int                  `json:"version"`
	ID         int                  `json:"id"`
	Type       sr.SchemaType        `json:"type"`
	Schema     string               `json:"schema"`
	References []sr.SchemaReference `json:"references,omitempty"`
}

// registry is an srfake registry whose registered schemas survive restarts:
// every successful registration is written to a file before the client sees
// its id, and a new registry is seeded from that file with the same
// subjects, versions and ids.
type registry struct {
	fake *srfake.Registry
	path string
	log  *slog.Logger

	mu      sync.Mutex // serialises registrations and their saves
	entries []schemaEntry
	seeded  map[int]struct{} // ids seeded at start
	srv     *http.Server
	ln      net.Listener
}

// startRegistry seeds a registry from path and serves it on ln until Close.
func startRegistry(ln net.Listener, path string, log *slog.Logger) (*registry, error) {
	r := &registry{fake: srfake.NewRegistry(), path: path, log: log, ln: ln, seeded: map[int]struct{}{}}
	if err := r.load(); err != nil {
		return nil, err
	}
	r.srv = &http.Server{Handler: r.handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := r.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("schema registry stopped serving", "err", err)
		}
	}()
	return r, nil
}

// URL is the registry's base URL.
func (r *registry) URL() string { return "http://" + r.ln.Addr().String() }

// Close stops serving, waiting at most d for requests in progress, then
// closes the connections left (a client's freshly dialled, still unused
// connection holds Shutdown up for 5 seconds).
func (r *registry) Close(d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := r.srv.Shutdown(ctx); err != nil {
		if cerr := r.srv.Close(); cerr != nil {
			return fmt.Errorf("stopping the schema registry: %w", cerr)
		}
		r.log.Debug("schema registry closed with connections open", "err", err)
	}
	return nil
}

func (r *registry) load() error {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", r.path, err)
	}
	if err := json.Unmarshal(b, &r.entries); err != nil {
		return fmt.Errorf("decoding %s (remove it, or start over with --reset): %w", r.path, err)
	}
	sort.Slice(r.entries, func(i, j int) bool {
		a, b := r.entries[i], r.entries[j]
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Subject != b.Subject {
			return a.Subject < b.Subject
		}
		return a.Version < b.Version
	})
	for _, e := range r.entries {
		if err := r.seed(e); err != nil {
			return err
		}
	}
	return nil
}

func (r *registry) seed(e schemaEntry) (err error) {
	sch := sr.Schema{Type: e.Type, Schema: e.Schema, References: e.References}
	if _, taken := r.seeded[e.ID]; taken {
		// The same schema under a second subject shares its id: registering
		// it again finds the id, as it did the first time.
		id, version, err := r.fake.RegisterSchema(e.Subject, sch)
		if err != nil {
			return fmt.Errorf("re-registering schema id %d under subject %q from %s: %w", e.ID, e.Subject, r.path, err)
		}
		if id != e.ID || version != e.Version {
			return fmt.Errorf("re-registering subject %q from %s gave id %d version %d, want id %d version %d (start over with --reset)",
				e.Subject, r.path, id, version, e.ID, e.Version)
		}
		return nil
	}
	r.seeded[e.ID] = struct{}{}
	defer func() {
		if p := recover(); p != nil { // SeedSchema panics on a clash or an invalid schema
			err = fmt.Errorf("re-seeding schema id %d of subject %q from %s: %v", e.ID, e.Subject, r.path, p)
		}
	}()
	r.fake.SeedSchema(e.Subject, e.Version, e.ID, sch)
	return nil
}

// handler serves the fake registry; a registration (POST
// /subjects/{subject}/versions) is answered only once it is saved.
func (r *registry) handler() http.Handler {
	inner := r.fake.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		subject, ok := registration(req)
		if !ok {
			inner.ServeHTTP(w, req)
			return
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		rec := httptest.NewRecorder()
		inner.ServeHTTP(rec, req)
		if rec.Code == http.StatusOK {
			if err := r.remember(subject, rec.Body.Bytes()); err != nil {
				r.log.Error("saving a registered schema", "subject", subject, "err", err)
				http.Error(w, `{"error_code":50001,"message":"saving the schema failed"}`, http.StatusInternalServerError)
				return
			}
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(rec.Body.Bytes()) // the client's connection is its own concern
	})
}

// registration returns the subject of a schema registration request.
func registration(req *http.Request) (string, bool) {
	if req.Method != http.MethodPost {
		return "", false
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/subjects/")
	if !ok {
		return "", false
	}
	subject, ok := strings.CutSuffix(rest, "/versions")
	if !ok || subject == "" || strings.Contains(subject, "/") {
		return "", false
	}
	return subject, true
}

// remember adds the schema just registered under subject (its id in body)
// to the file, unless it is known already.
func (r *registry) remember(subject string, body []byte) error {
	var resp struct {
		ID int `json:"id"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&resp); err != nil {
		return fmt.Errorf("decoding the registration response: %w", err)
	}
	for _, e := range r.entries {
		if e.Subject == subject && e.ID == resp.ID {
			return nil
		}
	}
	for v := 1; v <= 10_000; v++ {
		ss, ok := r.fake.GetSchema(subject, v)
		if !ok {
			continue
		}
		if ss.ID != resp.ID {
			continue
		}
		known := false
		for _, e := range r.entries {
			known = known || (e.Subject == subject && e.Version == v)
		}
		if known {
			return nil
		}
		r.entries = append(r.entries, schemaEntry{Subject: subject, Version: v, ID: ss.ID,
			Type: ss.Type, Schema: ss.Schema.Schema, References: ss.References})
		b, err := json.MarshalIndent(r.entries, "", "  ")
		if err != nil {
			return fmt.Errorf("encoding %s: %w", filepath.Base(r.path), err)
		}
		return writeFileAtomic(r.path, b, privateMode)
	}
	return fmt.Errorf("schema id %d not found under subject %q after registering it", resp.ID, subject)
}
