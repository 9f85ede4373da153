package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alertsync/alertsync/internal/monitor"
)

// ErrNotReady is returned (wrapped) by `monitor --once` when a component is
// not running or a target cannot be read; main exits 1 on it.
var ErrNotReady = errors.New("not every component is running")

// runMonitor is `alertsync monitor`: a live view of the pipeline from its
// components' admin servers. --once exits 1 when a component is not
// running; errors exit 2.
func runMonitor(ctx context.Context, args []string, out, errOut io.Writer) error {
	return failuresExit2(monitorCmd(ctx, args, out, errOut), ErrNotReady)
}

func monitorCmd(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg monitor.Config
	fs := newFlagSet("monitor", errOut)
	once := fs.Bool("once", false, "scrape twice, monitor.every apart, print one round and exit: 0 when every component is running, 1 when one is not or a target cannot be read")
	asJSON := fs.Bool("json", false, "print each round as one line of JSON")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	specs := cfg.Own.Targets
	if len(rest) > 0 {
		specs = rest
	}
	var targets []monitor.Target
	names := map[string]bool{}
	for _, s := range specs {
		t, err := monitor.ParseTarget(s)
		if err != nil {
			return usagef("monitor: %v", err)
		}
		if names[t.Name] {
			return usagef("monitor: two targets are named %q: name them NAME=URL", t.Name)
		}
		names[t.Name] = true
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return usagef("monitor: no target (give NAME=URL arguments or monitor.targets)")
	}

	cl := &http.Client{} // each target's scrape is bounded by monitor.timeout (Scrape)
	live := !*asJSON && !*once && isTerminal(out)
	var prev []monitor.Sample
	var prevAt time.Time
	for {
		cur := monitor.Scrape(ctx, cl, targets, cfg.Own.Timeout)
		if ctx.Err() != nil {
			return interrupted(*once)
		}
		at := time.Now()
		if !*once || prev != nil {
			round := monitor.Round{At: at.UTC().Truncate(time.Millisecond), Rows: monitor.Rows(targets, prev, cur)}
			if prev != nil {
				round.Interval = at.Sub(prevAt).Round(time.Millisecond).Seconds()
			}
			if err := writeRound(out, round, *asJSON, live, cfg.Own.Every); err != nil {
				return err
			}
			if *once {
				return notReady(round)
			}
		}
		prev, prevAt = cur, at
		select {
		case <-ctx.Done():
			return interrupted(*once)
		case <-time.After(cfg.Own.Every):
		}
	}
}

func writeRound(out io.Writer, r monitor.Round, asJSON, live bool, every time.Duration) error {
	if asJSON {
		return r.WriteJSON(out)
	}
	var b strings.Builder
	if live {
		b.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
	}
	b.WriteString("alertsync monitor  " + r.At.Local().Format("2006-01-02 15:04:05"))
	if r.Interval == 0 {
		b.WriteString("  (rates from the next round on)")
	} else {
		b.WriteString("  rates over " + monitor.FormatDuration(r.Interval))
	}
	if live {
		b.WriteString("  every " + every.String() + ", Ctrl-C to stop")
	}
	b.WriteString("\n")
	if err := r.WriteTable(&b); err != nil {
		return err
	}
	if !live {
		b.WriteString("\n")
	}
	_, err := io.WriteString(out, b.String()) // one write: a redraw does not flicker
	return err
}

// interrupted is the end of a monitor stopped by a signal: a clean stop,
// except for --once, which has not told whether the components run.
func interrupted(once bool) error {
	if once {
		return errors.New("monitor: interrupted before the round was complete")
	}
	return nil
}

// notReady names the components of r that are not running.
func notReady(r monitor.Round) error {
	var bad []string
	for _, row := range r.Rows {
		if row.Ready {
			continue
		}
		name := row.Target
		if row.Component != "" && row.Component != row.Target {
			name += "/" + row.Component
		}
		bad = append(bad, fmt.Sprintf("%s (%s)", monitor.Quote(name), monitor.Quote(row.State)))
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("monitor: %d of %d components are not running: %s: %w", len(bad), len(r.Rows), strings.Join(bad, ", "), ErrNotReady)
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
