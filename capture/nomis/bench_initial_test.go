package nomis

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
)

// Initial load benchmark parameters: benchLoadPrisoners prisoners with one
// current booking of benchLoadPerBooking alerts each.
const (
	benchLoadPrisoners  = 200_000
	benchLoadPerBooking = 5
	benchLoadAlerts     = benchLoadPrisoners * benchLoadPerBooking
)

// BenchmarkInitialLoad: the initial load of 1,000,000 alerts on the current
// bookings of 200,000 prisoners by the real binary against the real broker
// (figure capture.nomis.initial_load, alerts/s), from the capture's
// "initial load started" log line until the offender_alerts topic's high
// watermarks account for every alert (Kafka acknowledged the last op r
// record; the prisoner snapshots are produced along the way).
//
// The NOMIS data is inserted before the capture's first start applies the
// migrations, so the journal triggers do not exist yet and the journal
// starts empty: as in production, where NOMIS's alerts predate the journal
// and the first start loads them right after installing it. (Inserted with
// the triggers on, the 1,400,000 journal rows would be folded by the load:
// a cost of seeding, not of loading.) Every later iteration loads again on
// a start after the load's record is removed.
func BenchmarkInitialLoad(b *testing.B) {
	bin := buildCapture(b)
	db := pgtest.NewDB(b)
	db.Exec(b, deploy.NOMISSchemaSQL())
	db.Exec(b, deploy.NOMISSeedSQL())
	seedStart := time.Now()
	db.Exec(b, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, 'L' || lpad(i::text, 6, '0'), i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT i, TIMESTAMP '2024-03-01 10:00:00', i, i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, benchLoadPrisoners))
	for from := 1; from <= benchLoadPrisoners; from += 20_000 {
		db.Exec(b, fmt.Sprintf(`
SELECT set_config('nomis.audit_module_name', 'OIDALERT', true);
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
SELECT bk, s, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00',
       'Benchmark alert ' || bk || '/' || s || ': assessed risk to others, see the case notes of the keyworker', 'INST'
  FROM generate_series(%[1]d, %[2]d) bk, generate_series(1, %[3]d) s;`, from, min(from+19_999, benchLoadPrisoners), benchLoadPerBooking))
	}
	db.Exec(b, "VACUUM ANALYZE")
	b.Logf("seeded %d alerts of %d prisoners in %s", benchLoadAlerts, benchLoadPrisoners, time.Since(seedStart).Round(time.Millisecond))

	brokers := kafkatest.Real(b)
	reg := srfake.New()
	b.Cleanup(reg.Close)
	adm := kadm.NewClient(kafkatest.Client(b, brokers, kgo.MetadataMinAge(10*time.Millisecond)))
	prefix := kafkatest.Topic(b, "nload") + "."
	topic := prefix + "nomis.oms_owner.offender_alerts"
	env := captureEnv(db.DSN, brokers, reg.URL(), prefix, map[string]string{
		"GOMAXPROCS":                     strconv.Itoa(runtime.GOMAXPROCS(0)),
		"ALERTSYNC_CAPTURE_INITIAL_LOAD": "auto",
	})
	logDir := b.TempDir()

	var loading time.Duration
	for i := range b.N {
		b.StopTimer()
		if i > 0 {
			db.Exec(b, "DELETE FROM alertsync.alertsync_capture_state WHERE name = 'initial_load'")
		}
		base := int64(0)
		if i > 0 {
			base = topictest.Sum(topictest.EndOffsets(context.Background(), b, adm, topic))
		}
		want := base + benchLoadAlerts
		p := startLoadCapture(b, bin, env, filepath.Join(logDir, fmt.Sprintf("capture-%d.log", i+1)))
		started := p.wait(b, p.started, "initial load started", 5*time.Minute)
		cpu0, _ := proctest.CPUTime(p.PID())
		busy0, total0, _ := proctest.MachineCPU()
		b.StartTimer()
		var acked int64
		for deadline := started.Add(10 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if acked = topictest.Sum(topictest.EndOffsets(context.Background(), b, adm, topic)); acked >= want {
				break
			}
			if p.Exited() || time.Now().After(deadline) {
				b.Fatalf("topic %s has %d of %d records\n%s", topic, acked-base, benchLoadAlerts, p.LogTail())
			}
		}
		took := time.Since(started)
		b.StopTimer()
		cpu1, _ := proctest.CPUTime(p.PID())
		busy1, total1, _ := proctest.MachineCPU()
		if acked != want {
			b.Fatalf("topic %s has %d records after the load, want %d", topic, acked-base, benchLoadAlerts)
		}
		p.wait(b, p.capturing, "capturing", 2*time.Minute)
		if err := p.Stop(30 * time.Second); err != nil {
			b.Fatalf("stopping the capture: %v\n%s", err, p.LogTail())
		}
		loading += took
		b.Logf("load #%d: %d alerts in %s (%.0f alerts/s), capture CPU %s (%.0f%% of one core), machine busy %.0f%% of %d cores; the capture's log:\n%s",
			i+1, benchLoadAlerts, took.Round(time.Millisecond), float64(benchLoadAlerts)/took.Seconds(),
			(cpu1 - cpu0).Round(10*time.Millisecond), 100*(cpu1-cpu0).Seconds()/took.Seconds(),
			100*float64(busy1-busy0)/float64(max(total1-total0, 1)), runtime.NumCPU(), p.loadLog())
		b.StartTimer()
	}
	b.ReportMetric(float64(benchLoadAlerts*b.N)/loading.Seconds(), "alerts/s")
	b.StopTimer()
	query := timeCurrentAlerts(b, db)
	b.Logf("for comparison, the load's query alone (read and scanned by the benchmark, no capture running): %s, %.0f rows/s",
		query.Round(time.Millisecond), float64(benchLoadAlerts)/query.Seconds())
}

// timeCurrentAlerts runs the load's query (pgCurrentAlerts, every prisoner)
// through database/sql as the dialect does and returns how long reading and
// scanning every row took: the database's share of a load.
func timeCurrentAlerts(b *testing.B, db *pgtest.DB) time.Duration {
	b.Helper()
	began := time.Now()
	rows, err := db.SQL(b).QueryContext(context.Background(), pgCurrentAlerts, nil)
	if err != nil {
		b.Fatalf("running the load's query: %v", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		no    string
		book  int64
		alert sql.RawBytes
		id    sql.NullString
		n     int
	)
	for rows.Next() {
		if err := rows.Scan(&no, &book, &alert, &id); err != nil {
			b.Fatalf("reading the load's query: %v", err)
		}
		n++
	}
	if err := rows.Err(); err != nil {
		b.Fatalf("reading the load's query: %v", err)
	}
	if n != benchLoadAlerts {
		b.Fatalf("the load's query returned %d rows, want %d", n, benchLoadAlerts)
	}
	return time.Since(began)
}

// loadProc is one `alertsync capture nomis` process, its JSON log watched
// for the initial load's start, its progress and end (kept) and
// "capturing".
type loadProc struct {
	*proctest.Proc
	started, capturing chan time.Time
	mu                 sync.Mutex
	loadLines          []string
}

func startLoadCapture(tb testing.TB, bin string, env []string, logPath string) *loadProc {
	tb.Helper()
	p := &loadProc{started: make(chan time.Time, 4), capturing: make(chan time.Time, 4)}
	onStarted := proctest.NotifyMsg("initial load started", p.started)
	onCapturing := proctest.NotifyMsg("capturing", p.capturing)
	p.Proc = proctest.Start(tb, "capture", bin, []string{"capture", "nomis"}, env, logPath, func(line []byte) {
		onStarted(line)
		onCapturing(line)
		var entry struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal(line, &entry) == nil && (entry.Msg == "initial load done" || entry.Msg == "initial load progress") {
			p.mu.Lock()
			p.loadLines = append(p.loadLines, string(line))
			p.mu.Unlock()
		}
	})
	return p
}

// wait waits for the log line ch announces and returns when it was read; it
// fails the benchmark if the process exits or timeout passes first.
func (p *loadProc) wait(tb testing.TB, ch <-chan time.Time, msg string, timeout time.Duration) time.Time {
	tb.Helper()
	select {
	case at := <-ch:
		return at
	case <-p.Done():
		tb.Fatalf("capture exited before %q: %v\n%s", msg, p.Wait(), p.LogTail())
	case <-time.After(timeout):
		tb.Fatalf("no %q from the capture after %s\n%s", msg, timeout, p.LogTail())
	}
	return time.Time{}
}

// loadLog returns the "initial load progress" and "initial load done" log
// lines read, one a line.
func (p *loadProc) loadLog() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.loadLines, "\n")
}
