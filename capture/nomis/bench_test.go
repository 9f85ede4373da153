package nomis

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/pgcluster"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
)

// The benchmarks measure the real `alertsync capture nomis` binary, run as a
// subprocess, against a real Kafka broker (kafkatest.Real: acknowledgements
// cost what they cost in production and the broker's CPU is not the
// benchmark process's), and the write cost of the journal triggers.
//
// Figures (internal/tools/benchfmt): capture.nomis in changes/s (journal
// backlog to Kafka acknowledgement), nomis.trigger_overhead in changes/s
// with its ratio to nomis.no_trigger. The capture runs with GOMAXPROCS of the
// benchmark (1 under scripts/bench.sh, -cpu 1).
//
// The helpers below (building and driving the capture process) are shared
// with the crash test (crash_test.go, build tag broker).

// Capture benchmark parameters.
const (
	benchBacklog  = 200_000 // journal rows committed before each capture start
	benchBookings = 1_000   // bookings the alerts spread over
	benchWarmup   = 50_000  // changes drained, untimed, before the first measured drain
)

// BenchmarkCaptureNomis: a journal backlog of 200,000 alert changes (100,000
// inserts, then an update of each, in transactions of 10,000) committed while
// no capture runs (after an untimed warm-up drain of 50,000 changes), drained
// by the capture from its "capturing" log line until
// the topic's high watermarks account for every change (Kafka acknowledged
// the last record).
func BenchmarkCaptureNomis(b *testing.B) {
	bin := buildCapture(b)
	db := pgtest.NewDB(b)
	db.Exec(b, deploy.NOMISSchemaSQL())
	db.Exec(b, deploy.NOMISSeedSQL())
	brokers := kafkatest.Real(b)
	reg := srfake.New()
	b.Cleanup(reg.Close)
	adm := kadm.NewClient(kafkatest.Client(b, brokers, kgo.MetadataMinAge(10*time.Millisecond)))
	prefix := kafkatest.Topic(b, "nbench") + "."
	topic := prefix + "nomis.oms_owner.offender_alerts"
	env := captureEnv(db.DSN, brokers, reg.URL(), prefix, map[string]string{
		"GOMAXPROCS": strconv.Itoa(runtime.GOMAXPROCS(0)),
	})
	logDir := b.TempDir()

	// First start: migrations, schemas, topics; the offenders and bookings
	// of the workload are published and leave the journal.
	db.Exec(b, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, 'B' || lpad(i::text, 4, '0') || 'CD', i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT i, TIMESTAMP '2024-03-01 10:00:00', i, i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, benchBookings))
	p := startCapture(b, bin, env, filepath.Join(logDir, "capture-setup.log"))
	p.waitCapturing(b, 2*time.Minute)
	waitJournalEmpty(b, db, p, 2*time.Minute)
	// Warm-up, untimed: a running pipeline's broker and capture have their
	// code compiled and caches filled (the broker is a JVM started for this
	// benchmark), so drain 50,000 changes first.
	fillBacklog(b, db, benchWarmup)
	waitJournalEmpty(b, db, p, 2*time.Minute)
	if err := p.Stop(30 * time.Second); err != nil {
		b.Fatalf("stopping the capture after its first start: %v\n%s", err, p.LogTail())
	}

	var drained time.Duration
	for i := range b.N {
		b.StopTimer()
		db.Exec(b, "DELETE FROM oms_owner.offender_alerts")
		db.Exec(b, "DELETE FROM alertsync.alertsync_journal")
		genStart := time.Now()
		fillBacklog(b, db, benchBacklog)
		gen := time.Since(genStart)
		base := topictest.Sum(topictest.EndOffsets(context.Background(), b, adm, topic))
		want := base + benchBacklog
		launched := time.Now()
		p := startCapture(b, bin, env, filepath.Join(logDir, fmt.Sprintf("capture-%d.log", i+1)))
		started := p.waitCapturing(b, 2*time.Minute)
		b.StartTimer()
		var acked int64
		for deadline := started.Add(5 * time.Minute); ; time.Sleep(10 * time.Millisecond) {
			if acked = topictest.Sum(topictest.EndOffsets(context.Background(), b, adm, topic)); acked >= want {
				break
			}
			if p.Exited() || time.Now().After(deadline) {
				b.Fatalf("topic %s has %d of %d records\n%s", topic, acked-base, benchBacklog, p.LogTail())
			}
		}
		took := time.Since(started)
		b.StopTimer()
		if acked != want {
			b.Fatalf("topic %s has %d records after the drain, want %d: duplicates without a crash", topic, acked-base, benchBacklog)
		}
		waitJournalEmpty(b, db, p, time.Minute)
		if err := p.Stop(30 * time.Second); err != nil {
			b.Fatalf("stopping the capture: %v\n%s", err, p.LogTail())
		}
		drained += took
		b.Logf("capture #%d: %d journal rows (filled in %s) in %s (%.0f changes/s) after a start-up of %s",
			i+1, benchBacklog, gen.Round(time.Millisecond), took.Round(time.Millisecond),
			float64(benchBacklog)/took.Seconds(), started.Sub(launched).Round(time.Millisecond))
		b.StartTimer()
	}
	b.ReportMetric(float64(benchBacklog*b.N)/drained.Seconds(), "changes/s")
}

// fillBacklog commits n/2 alert inserts and then an update of each, in
// transactions of 10,000, as a NOMIS session (module OIDALERT).
func fillBacklog(tb testing.TB, db *pgtest.DB, n int) {
	tb.Helper()
	const txn = 10_000
	inserts := n / 2
	for from := 1; from <= inserts; from += txn {
		to := min(from+txn-1, inserts)
		db.Exec(tb, fmt.Sprintf(`BEGIN;
SELECT set_config('nomis.audit_module_name', 'OIDALERT', true);
INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
SELECT 1 + i %% %[3]d, 1 + i / %[3]d, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00',
       'Benchmark alert ' || i || ': assessed risk to others, see the case notes of the keyworker', 'INST'
  FROM generate_series(%[1]d, %[2]d) i;
COMMIT;`, from, to, benchBookings))
	}
	for from := 1; from <= n-inserts; from += txn {
		to := min(from+txn-1, n-inserts)
		db.Exec(tb, fmt.Sprintf(`BEGIN;
SELECT set_config('nomis.audit_module_name', 'OIDALERT', true);
UPDATE oms_owner.offender_alerts SET comment_text = comment_text || ' (reviewed)', modify_datetime = TIMESTAMP '2024-07-01 09:30:00'
 WHERE (offender_book_id, alert_seq) IN (SELECT 1 + i %% %[3]d, 1 + i / %[3]d FROM generate_series(%[1]d, %[2]d) i);
COMMIT;`, from, to, benchBookings))
	}
}

// Trigger overhead benchmark parameters.
const (
	overheadConns = 4     // connections writing at once
	overheadRows  = 2_000 // alerts each connection inserts, then updates, per iteration
)

// BenchmarkNomisTriggerOverhead: insert+update throughput into
// OFFENDER_ALERTS, one row per transaction (pgbench-like) from 4
// connections, with the journal triggers and with them disabled on the same
// database. Each iteration inserts 2,000 alerts per connection, one
// transaction each, then updates each once, once with and once without the
// triggers (alternating which goes first), so that a change in the machine's
// load affects both arms alike. The stand-in's NOMIS audit triggers stay on
// in both.
//
// Two databases: "durable" on a cluster that commits as a production
// database does (fsync on, on disk, not tmpfs), the figure that says what
// the triggers cost NOMIS; and "nofsync" on the test clusters' fsync-off
// tmpfs setting, where commits cost almost nothing and the triggers' CPU
// cost shows undiluted (a worst case).
func BenchmarkNomisTriggerOverhead(b *testing.B) {
	for _, tc := range []struct {
		name    string
		durable bool
	}{{"durable", true}, {"nofsync", false}} {
		b.Run(tc.name, func(b *testing.B) {
			var db *pgtest.DB
			if tc.durable {
				c, err := pgcluster.Start(context.Background(), pgcluster.Options{
					TempDir:  os.TempDir(),
					Settings: map[string]string{"track_commit_timestamp": "on", "wal_level": "logical"},
				})
				if err != nil {
					b.Fatalf("starting a durable PostgreSQL cluster: %v", err)
				}
				b.Cleanup(func() { _ = c.Stop(context.Background()) })
				db = pgtest.NewDBOn(b, c)
			} else {
				db = pgtest.NewDB(b)
			}
			overheadSetup(b, db)
			var took [2]time.Duration // with, without
			changes := 0
			for i := range b.N {
				for k := range 2 {
					arm := (i + k) % 2 // 0 with, 1 without
					b.StopTimer()
					db.Exec(b, "DELETE FROM oms_owner.offender_alerts")
					db.Exec(b, "DELETE FROM alertsync.alertsync_journal")
					db.Exec(b, "VACUUM ANALYZE oms_owner.offender_alerts")
					db.Exec(b, "VACUUM ANALYZE alertsync.alertsync_journal")
					if arm == 1 {
						db.Exec(b, "ALTER TABLE oms_owner.offender_alerts DISABLE TRIGGER alertsync_journal")
					}
					b.StartTimer()
					began := time.Now()
					n := overheadWrite(b, db, 2*i+k)
					took[arm] += time.Since(began)
					b.StopTimer()
					if arm == 1 {
						db.Exec(b, "ALTER TABLE oms_owner.offender_alerts ENABLE TRIGGER alertsync_journal")
					}
					journal := pgtest.QueryValue[int](b, db, "SELECT count(*)::int FROM alertsync.alertsync_journal")
					if arm == 0 && journal != n || arm == 1 && journal != 0 {
						b.Fatalf("journal holds %d rows after %d changes (triggers on: %v)", journal, n, arm == 0)
					}
					b.StartTimer()
					if arm == 0 {
						changes += n
					}
				}
			}
			b.ReportMetric(float64(changes)/took[0].Seconds(), "with_changes/s")
			b.ReportMetric(float64(changes)/took[1].Seconds(), "without_changes/s")
		})
	}
}

// overheadSetup creates the stand-in, the journal and the bookings the
// overhead benchmark writes alerts to.
func overheadSetup(b *testing.B, db *pgtest.DB) {
	b.Helper()
	db.Exec(b, deploy.NOMISSchemaSQL())
	db.Exec(b, deploy.NOMISSeedSQL())
	set, err := migrate.Named("nomis")
	if err != nil {
		b.Fatal(err)
	}
	if _, err := migrate.Up(context.Background(), db.SQL(b), set, migrate.Latest); err != nil {
		b.Fatal(err)
	}
	db.Exec(b, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, 'B' || lpad(i::text, 4, '0') || 'CD', i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT i, TIMESTAMP '2024-03-01 10:00:00', i, i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, benchBookings))
}

// overheadWrite inserts overheadRows alerts from each of overheadConns
// connections, one autocommitted statement each, then updates each once;
// it returns the number of changes.
func overheadWrite(b *testing.B, db *pgtest.DB, run int) int {
	b.Helper()
	ctx := context.Background()
	g, gctx := errgroup.WithContext(ctx)
	for w := range overheadConns {
		g.Go(func() error {
			conn, err := db.Pool.Acquire(gctx)
			if err != nil {
				return fmt.Errorf("acquiring a connection: %w", err)
			}
			defer conn.Release()
			if _, err := conn.Exec(gctx, "SELECT set_config('nomis.audit_module_name', 'OIDALERT', false)"); err != nil {
				return fmt.Errorf("setting the module: %w", err)
			}
			seq := func(i int) int { return run*overheadConns*overheadRows + w*overheadRows + i }
			for i := range overheadRows {
				book, s := 1+seq(i)%benchBookings, seq(i)/benchBookings
				if _, err := conn.Exec(gctx, `INSERT INTO oms_owner.offender_alerts
					(offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
					VALUES ($1, $2, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00', $3, 'INST')`,
					book, s, "Risk to others: see the case notes of the keyworker"); err != nil {
					return fmt.Errorf("inserting alert %d/%d: %w", book, s, err)
				}
			}
			for i := range overheadRows {
				book, s := 1+seq(i)%benchBookings, seq(i)/benchBookings
				ct, err := conn.Exec(gctx, `UPDATE oms_owner.offender_alerts SET comment_text = $3, modify_datetime = TIMESTAMP '2024-07-01 09:30:00'
					WHERE offender_book_id = $1 AND alert_seq = $2`, book, s, "Reviewed: risk to others remains")
				if err != nil {
					return fmt.Errorf("updating alert %d/%d: %w", book, s, err)
				}
				if ct.RowsAffected() != 1 {
					return fmt.Errorf("updating alert %d/%d: %d rows", book, s, ct.RowsAffected())
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatal(err)
	}
	return 2 * overheadConns * overheadRows
}

// waitJournalEmpty waits until the journal is empty; it fails if the
// capture p exits first.
func waitJournalEmpty(tb testing.TB, db *pgtest.DB, p *captureProc, timeout time.Duration) {
	tb.Helper()
	waitNone(tb, db, p, "SELECT count(*) FROM alertsync.alertsync_journal", "journal rows", timeout)
}

// waitNone waits until count (a SELECT count(*)) is 0, failing when the
// capture exits first or after timeout; what names the rows counted.
func waitNone(tb testing.TB, db *pgtest.DB, p *captureProc, count, what string, timeout time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		n := pgtest.QueryValue[int64](tb, db, count)
		if n == 0 {
			return
		}
		if p.Exited() {
			tb.Fatalf("capture exited with %d %s left: %v\n%s", n, what, p.Wait(), p.LogTail())
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%d %s still there after %s\n%s", n, what, timeout, p.LogTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// buildCapture builds the alertsync binary into a temporary directory.
func buildCapture(tb testing.TB) string { tb.Helper(); return proctest.BuildAlertsync(tb) }

// captureEnv is the environment of a capture process: this process's
// environment without ALERTSYNC_* settings, then the given configuration.
func captureEnv(dsn string, brokers []string, registry, prefix string, extra map[string]string) []string {
	set := map[string]string{
		"ALERTSYNC_NOMIS_DSN":                 dsn,
		"ALERTSYNC_KAFKA_BROKERS":             strings.Join(brokers, ","),
		"ALERTSYNC_REGISTRY_URL":              registry,
		"ALERTSYNC_TOPICS_PREFIX":             prefix,
		"ALERTSYNC_TOPICS_PARTITIONS":         "3",
		"ALERTSYNC_TOPICS_REPLICATION_FACTOR": "1",
		"ALERTSYNC_ADMIN_LISTEN":              "127.0.0.1:0",
		"ALERTSYNC_LOG_FORMAT":                "json",
		"ALERTSYNC_LOG_LEVEL":                 "info",
		"ALERTSYNC_SHUTDOWN_TIMEOUT":          "20s",
		"ALERTSYNC_CAPTURE_INITIAL_LOAD":      "never", // these measure and test change capture
	}
	for k, v := range extra {
		set[k] = v
	}
	return proctest.Env(set)
}

// captureProc is one `alertsync capture nomis` process, its JSON log
// watched for "capturing".
type captureProc struct {
	*proctest.Proc
	capturing chan time.Time
}

func startCapture(tb testing.TB, bin string, env []string, logPath string) *captureProc {
	tb.Helper()
	p := &captureProc{capturing: make(chan time.Time, 16)}
	p.Proc = proctest.Start(tb, "capture", bin, []string{"capture", "nomis"}, env, logPath, proctest.NotifyMsg("capturing", p.capturing))
	return p
}

// waitCapturing waits for the "capturing" log line and returns when it was
// read; it fails the test if the process exits or timeout passes first.
func (p *captureProc) waitCapturing(tb testing.TB, timeout time.Duration) time.Time {
	tb.Helper()
	select {
	case at := <-p.capturing:
		return at
	case <-p.Done():
		tb.Fatalf("capture exited before capturing: %v\n%s", p.Wait(), p.LogTail())
	case <-time.After(timeout):
		tb.Fatalf("capture not capturing after %s\n%s", timeout, p.LogTail())
	}
	return time.Time{}
}
