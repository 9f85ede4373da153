package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/alertsync/alertsync/internal/admin"
)

// A Target is one component's admin server.
type Target struct {
	Name string // as the user named it, or host:port
	URL  string // base URL, e.g. http://127.0.0.1:9464
}

// ParseTarget reads NAME=URL or URL; a URL without a scheme is http, and
// a target without a name is named after its host:port.
func ParseTarget(s string) (Target, error) {
	name, raw, named := strings.Cut(s, "=")
	if !named {
		raw, name = s, ""
	}
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return Target{}, fmt.Errorf("target %q: no address (want NAME=URL or URL, e.g. transform=http://127.0.0.1:9466)", s)
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Target{}, fmt.Errorf("target %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return Target{}, fmt.Errorf("target %q: want an http or https address with a host, e.g. transform=http://127.0.0.1:9466", s)
	}
	if name = strings.TrimSpace(name); name == "" {
		name = u.Host
	}
	return Target{Name: name, URL: strings.TrimSuffix(u.String(), "/")}, nil
}

// A Sample is one scrape of a target: its components' states (/status)
// and its metrics (/metrics). Err says why either could not be read; the
// sample then holds nothing else.
type Sample struct {
	At       time.Time
	Statuses []admin.Status
	Families map[string]*dto.MetricFamily
	Err      error
}

// ErrNotAlertsync is returned (wrapped) when an address answers, but not
// as an alertsync admin server.
var ErrNotAlertsync = errors.New("not an alertsync admin server")

// Scrape reads /status and /metrics of each target at once, each
// target's two requests bounded by timeout together, and returns the
// samples in the targets' order.
func Scrape(ctx context.Context, cl *http.Client, targets []Target, timeout time.Duration) []Sample {
	out := make([]Sample, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out[i] = scrape(sctx, cl, t)
		})
	}
	wg.Wait()
	return out
}

func scrape(ctx context.Context, cl *http.Client, t Target) Sample {
	began := time.Now()
	s := Sample{At: began}
	body, err := get(ctx, cl, t.URL+"/status", "application/json")
	if err != nil {
		s.Err = err
		return s
	}
	if err := json.Unmarshal(body, &s.Statuses); err != nil {
		s.Err = fmt.Errorf("%s/status: %w: %w", t.URL, ErrNotAlertsync, err)
		return s
	}
	body, err = get(ctx, cl, t.URL+"/metrics", "text/plain;version=0.0.4")
	if err != nil {
		s.Err = err
		return s
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	if s.Families, err = p.TextToMetricFamilies(strings.NewReader(string(body))); err != nil {
		s.Families = nil
		s.Err = fmt.Errorf("%s/metrics: %w: %w", t.URL, ErrNotAlertsync, err)
		return s
	}
	return s
}

// maxBody bounds what is read of one response: a component's /metrics is
// tens of kilobytes.
const maxBody = 16 << 20

func get(ctx context.Context, cl *http.Client, u, accept string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", accept)
	resp, err := cl.Do(req)
	if err != nil {
		return nil, err // a *url.Error: it names the method and the URL
	}
	defer func() { _ = resp.Body.Close() }()
	switch {
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
		// No such endpoint: something else listens there.
		return nil, fmt.Errorf("GET %s: %s: %w", u, resp.Status, ErrNotAlertsync)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	return body, nil
}
