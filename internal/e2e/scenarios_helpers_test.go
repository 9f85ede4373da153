//go:build broker

package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// procByName returns the running process of component name.
func (w *world) procByName(t testing.TB, name string) *proc {
	t.Helper()
	for _, p := range w.procs {
		if p.name == name {
			return p
		}
	}
	t.Fatalf("no component %q", name)
	return nil
}

// stopProc stops component name cleanly; requireRunning then ignores it
// until startProc starts it again.
func (w *world) stopProc(t *testing.T, name string) {
	t.Helper()
	for i, p := range w.procs {
		if p.name == name {
			require.NoError(t, p.Stop(20*time.Second), "stopping %s\n%s", name, p.LogTail())
			w.procs = append(w.procs[:i:i], w.procs[i+1:]...)
			return
		}
	}
	t.Fatalf("no running component %q", name)
}

// startProc starts component name again as it was first started (a new
// log file) and waits until every process is ready. The process lives
// until t ends: pass the test's t, not a subtest's.
func (w *world) startProc(t *testing.T, name string) {
	t.Helper()
	spec, ok := w.specs[name]
	require.True(t, ok, "no component %q", name)
	p := &proc{name: name}
	log := filepath.Join(w.logDir, fmt.Sprintf("%s-%d.log", name, time.Now().UnixNano()))
	p.Proc = proctest.Start(t, name, w.bin, spec.args, proctest.Env(spec.env), log, p.watch)
	w.procs = append(w.procs, p)
	w.waitReady(t, 60*time.Second)
}

// cli runs the alertsync binary with args and the environment of component
// name plus extra, and returns its standard output, standard error and
// exit code.
func (w *world) cli(t *testing.T, name string, extra map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	spec, ok := w.specs[name]
	require.True(t, ok, "no component %q", name)
	env := map[string]string{}
	for k, v := range spec.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, w.bin, args...)
	cmd.Env = proctest.Env(env)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "running alertsync %v: %s", args, errOut.String())
		code = exit.ExitCode()
	}
	return out.String(), errOut.String(), code
}

// metric scrapes component name's /metrics and returns the value of the
// first sample of metric whose labels contain labels ("" for any); -1 when
// there is none.
func (w *world) metric(t testing.TB, name, metric, labels string) float64 {
	t.Helper()
	addr := w.procByName(t, name).adminAddr()
	require.NotEmpty(t, addr, "%s has no admin address", name)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/metrics", http.NoBody)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	require.NoError(t, err)
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric) || strings.HasPrefix(line, "#") {
			continue
		}
		rest := line[len(metric):]
		if rest == "" || (rest[0] != '{' && rest[0] != ' ') || !strings.Contains(rest, labels) {
			continue
		}
		v, err := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
		require.NoError(t, err, "metric line %q", line)
		return v
	}
	return -1
}

// dlqEntry is what `alertsync dlq list --json` prints of one entry.
type dlqEntry struct {
	Stage      string `json:"stage"`
	ErrorKind  string `json:"error_kind"`
	Error      string `json:"error"`
	AlertKey   string `json:"alert_key"`
	CommandID  string `json:"command_id"`
	Held       bool   `json:"held"`
	HeldBehind string `json:"held_behind"`
	Hold       string `json:"hold"`
}

// dlqList runs `alertsync dlq list --json` with the applies' settings and
// returns its entries.
func (w *world) dlqList(t *testing.T) []dlqEntry {
	t.Helper()
	out, errOut, code := w.cli(t, "apply-nomis", nil, "dlq", "list", "--json")
	require.Zero(t, code, "alertsync dlq list failed:\n%s\n%s", out, errOut)
	var entries []dlqEntry
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		if trimmed := strings.TrimSpace(out); strings.HasPrefix(trimmed, "[") {
			require.NoError(t, dec.Decode(&entries), "dlq list output:\n%s", out)
			break
		}
		var e dlqEntry
		require.NoError(t, dec.Decode(&e), "dlq list output:\n%s", out)
		entries = append(entries, e)
	}
	return entries
}

// quietNoLoop waits until every command on the topics has an outcome,
// then requires: exactly wantToNOMIS commands to NOMIS (the DPS user
// changes), every command in the opposite direction of its origin, nothing
// in the DLQ, and neither topics nor stores moving for quietFor. It is the
// no-loop check of scenarios whose commands to DPS are not one per user
// change (prisoner replaces, replays).
func (w *world) quietNoLoop(t *testing.T, wantToNOMIS int) {
	t.Helper()
	var tr traffic
	w.eventually(t, syncWait, "an outcome for every command", func() string {
		tr = w.readTraffic(t)
		if n := len(tr.toDPS) + len(tr.toNOMIS); len(tr.toNOMIS) < wantToNOMIS || len(tr.outcomes) < n {
			return fmt.Sprintf("%d commands to NOMIS (want %d), %d to DPS, %d outcomes", len(tr.toNOMIS), wantToNOMIS, len(tr.toDPS), len(tr.outcomes))
		}
		return ""
	})
	before := w.storeState(t)
	time.Sleep(quietFor)
	after := w.readTraffic(t)
	require.Equal(t, before, w.storeState(t), "alert rows changed after the pipeline went quiet (a loop?)")
	require.Len(t, after.toDPS, len(tr.toDPS), "commands to DPS kept coming: %s", perPrisoner(after.toDPS))
	require.Len(t, after.toNOMIS, len(tr.toNOMIS), "commands to NOMIS kept coming: %s", perPrisoner(after.toNOMIS))
	require.Len(t, after.toNOMIS, wantToNOMIS, "one command to NOMIS per DPS user change: %s", perPrisoner(after.toNOMIS))
	for _, c := range after.toDPS {
		require.Equal(t, "NOMIS", c.origin, "a command to DPS that did not come from NOMIS: %+v", c)
	}
	for _, c := range after.toNOMIS {
		require.Equal(t, "DPS", c.origin, "a command to NOMIS that did not come from DPS: %+v", c)
	}
	require.Zero(t, after.dlq, "records in the DLQ")
}

// outcomesOf lists the outcomes of the prison numbers' commands, in topic
// order, for failure messages.
func (w *world) outcomesOf(t *testing.T, numbers ...string) string {
	t.Helper()
	want := map[string]bool{}
	for _, n := range numbers {
		want[n] = true
	}
	var parts []string
	for _, o := range w.readTraffic(t).outcomes {
		if want[o.prisonNumber] {
			parts = append(parts, fmt.Sprintf("%s %s %s %s", o.prisonNumber, o.target, o.result, o.reason))
		}
	}
	return strings.Join(parts, "; ")
}

// nomisRowsOf lists the NOMIS alert rows on every booking the prisoners
// had when seeded (current, current + 5000, current + 10000) and their
// bookings' owners and BOOKING_SEQ, for failure messages of resyncs.
func (w *world) nomisRowsOf(t *testing.T, ps ...prisoner) string {
	t.Helper()
	var books []int64
	for _, p := range ps {
		books = append(books, p.booking, p.booking+5000, p.booking+10000)
	}
	rows, err := w.nomis.Pool.Query(context.Background(), `
SELECT a.offender_book_id::bigint, a.alert_seq::bigint, b.offender_id::bigint, b.booking_seq::int, a.alert_code, coalesce(a.comment_text, ''),
       coalesce(a.authorize_person_text, ''), coalesce(m.dps_alert_id::text, '-')
  FROM oms_owner.offender_alerts a JOIN oms_owner.offender_bookings b ON b.offender_book_id = a.offender_book_id
  LEFT JOIN alertsync.alertsync_alert_mapping m ON m.offender_book_id = a.offender_book_id AND m.alert_seq = a.alert_seq
 WHERE a.offender_book_id = ANY($1) ORDER BY 1, 2`, books)
	require.NoError(t, err)
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var book, seq, offender int64
		var bseq int
		var code, comment, auth, dps string
		require.NoError(t, rows.Scan(&book, &seq, &offender, &bseq, &code, &comment, &auth, &dps))
		parts = append(parts, fmt.Sprintf("%d/%d (offender %d, booking_seq %d) %s %q auth %q mapped %s", book, seq, offender, bseq, code, comment, auth, dps))
	}
	require.NoError(t, rows.Err())
	return strings.Join(parts, "; ")
}

// dpsRowsOf lists the DPS alert rows of the prison numbers, soft-deleted
// ones included, with their DPS-side mapping, for failure messages.
func (w *world) dpsRowsOf(t *testing.T, numbers ...string) string {
	t.Helper()
	rows, err := w.dps.Pool.Query(context.Background(), `
SELECT a.id::text, a.prison_number, c.code, coalesce(a.description, ''), coalesce(a.authorised_by, ''), a.deleted_at IS NOT NULL,
       coalesce(m.nomis_booking_id::text || '/' || m.nomis_alert_seq::text, '-')
  FROM public.alert a JOIN public.alert_code c ON c.id = a.alert_code_id
  LEFT JOIN alertsync.alert_mapping m ON m.dps_alert_id = a.id
 WHERE a.prison_number = ANY($1) ORDER BY a.id`, numbers)
	require.NoError(t, err)
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var id, pn, code, desc, auth, mapped string
		var deleted bool
		require.NoError(t, rows.Scan(&id, &pn, &code, &desc, &auth, &deleted, &mapped))
		parts = append(parts, fmt.Sprintf("%s %s %s %q auth %q deleted %t mapped %s", id, pn, code, desc, auth, deleted, mapped))
	}
	require.NoError(t, rows.Err())
	return strings.Join(parts, "; ")
}
