package demo_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/demo"
	"github.com/alertsync/alertsync/internal/monitor"
	"github.com/alertsync/alertsync/internal/testenv/proctest"
)

// TestDemo starts `alertsync demo` as a process on a fresh data directory
// and checks, in order: the initial load copies the NOMIS alerts on current
// bookings to DPS; a NOMIS insert made with SQL appears in DPS and a DPS
// insert in NOMIS, with no change following either (no loop); changes made
// just before a SIGKILL and while the demo is down arrive once each after a
// restart on the same data directory; the admin page, loaded in headless
// Chromium, shows every component running; SIGTERM stops it cleanly, with
// the PostgreSQL clusters stopped; a start after that resumes without
// seeding or loading anything again.
func TestDemo(t *testing.T) {
	chromium := findChromium(t)
	bin := proctest.BuildAlertsync(t)
	dir, err := os.MkdirTemp("", "alertsync-demo-test-") // t.TempDir is 0700: postgres could not traverse it
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755)) //nolint:gosec // G302: the postgres OS user must traverse it
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	dataDir := filepath.Join(dir, "data")
	adminAddr := freeAddr(t)
	start := func(t *testing.T, name string, extra ...string) *proctest.Proc {
		t.Helper()
		args := append([]string{"demo", "--data-dir", dataDir, "--admin-listen", adminAddr}, extra...)
		p := proctest.Start(t, name, bin, args, proctest.Env(map[string]string{"ALERTSYNC_LOG_LEVEL": "warn"}),
			filepath.Join(dir, name+".log"), nil)
		waitReady(t, p, "http://"+adminAddr, filepath.Join(dataDir, "demo.env"), 3*time.Minute)
		return p
	}
	ctx := context.Background()
	top := t

	p := start(t, "first", "--reset")
	env := readEnv(t, filepath.Join(dataDir, "demo.env"))
	for _, k := range []string{"DPS_DSN", "NOMIS_DSN", "KAFKA_BROKERS", "REGISTRY_URL", "ADMIN_URL"} {
		require.NotEmpty(t, env[k], "demo.env sets %s", k)
	}
	dps, nomis := connect(t, env["DPS_DSN"]), connect(t, env["NOMIS_DSN"])

	want := count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts a JOIN oms_owner.offender_bookings b USING (offender_book_id) WHERE b.booking_seq = 1`)
	require.Positive(t, want, "the sample prisoners have alerts on current bookings")
	eventually(t, 60*time.Second, "the initial load copies every NOMIS alert on a current booking to DPS", func() bool {
		return count(t, dps, `SELECT count(*) FROM alert WHERE deleted_at IS NULL`) == want
	})
	require.Positive(t, count(t, nomis, `SELECT count(*) FROM oms_owner.offenders o WHERE EXISTS (SELECT 1 FROM oms_owner.offenders r WHERE r.offender_id = o.root_offender_id AND r.offender_id <> o.offender_id)`),
		"some sample prisoners are merged (alias records)")
	require.Positive(t, count(t, nomis, `SELECT count(*) FROM oms_owner.offender_bookings WHERE booking_seq > 1`), "some have several bookings")
	nomisTotal := count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts`)

	// NOMIS users add alerts to one prisoner, DPS users to another: a NOMIS
	// insert takes max(ALERT_SEQ)+1 of its booking, as apply nomis does, and
	// two writers of one booking at once would collide, in NOMIS as here.
	var nomisPrisoner, prisoner string
	var nomisBooking, booking int64
	current := `SELECT o.offender_id_display, b.offender_book_id::bigint FROM oms_owner.offender_bookings b
		JOIN oms_owner.offenders o ON o.offender_id = b.offender_id WHERE b.booking_seq = 1 ORDER BY 2 LIMIT 1 OFFSET $1`
	require.NoError(t, nomis.QueryRow(ctx, current, 0).Scan(&nomisPrisoner, &nomisBooking))
	require.NoError(t, nomis.QueryRow(ctx, current, 1).Scan(&prisoner, &booking))

	t.Run("NOMIS to DPS", func(t *testing.T) {
		insertNOMIS(t, nomis, nomisBooking, "from NOMIS 1")
		eventually(t, 30*time.Second, "the NOMIS alert appears in DPS", func() bool {
			return count(t, dps, `SELECT count(*) FROM alert WHERE description = 'from NOMIS 1' AND prison_number = $1`, nomisPrisoner) == 1
		})
	})
	t.Run("DPS to NOMIS", func(t *testing.T) {
		insertDPS(t, dps, prisoner, "from DPS 1")
		eventually(t, 30*time.Second, "the DPS alert appears in NOMIS", func() bool {
			return count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts WHERE comment_text = 'from DPS 1' AND offender_book_id = $1`, booking) == 1
		})
	})
	t.Run("no loop", func(t *testing.T) {
		snapshot := func() [4]int {
			return [4]int{count(t, dps, `SELECT count(*) FROM alert`), count(t, dps, `SELECT count(*) FROM audit_event`),
				count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts`),
				count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts WHERE modify_datetime IS NOT NULL`)}
		}
		before := snapshot()
		require.Equal(t, want+2, before[0], "DPS: the loaded alerts, one from NOMIS, one of its own")
		require.Equal(t, nomisTotal+2, before[2], "NOMIS: its alerts, one of its own, one from DPS")
		time.Sleep(5 * time.Second)
		require.Equal(t, before, snapshot(), "nothing changes after both inserts have synced")
	})

	t.Run("alertsync monitor on the demo's one admin server", func(t *testing.T) {
		out, err := exec.CommandContext(ctx, bin, "monitor", "--once", "--json", "--monitor.every=1s", "demo="+adminAddr).Output()
		require.NoError(t, err, "exit 0: every component running\n%s", out)
		var round monitor.Round
		require.NoError(t, json.Unmarshal(out, &round), "%s", out)
		var got []string
		for _, r := range round.Rows {
			got = append(got, r.Component+" "+r.State)
		}
		// The pipeline's components in pipeline order, then the demo's
		// embedded services by name.
		require.Equal(t, []string{"capture-dps running", "capture-nomis running", "transform running", "apply-dps running", "apply-nomis running",
			"kafka running", "postgres-dps running", "postgres-nomis running", "registry running"}, got)
		require.NotNil(t, round.Rows[0].RSSBytes, "the process's memory on the target's first row")
		for _, r := range round.Rows[1:] {
			require.Nil(t, r.RSSBytes, "%s: the same process, not counted again", r.Component)
		}
		for _, r := range round.Rows[:5] {
			require.NotNil(t, r.Rate, "%s: its own rate, from the shared registry", r.Component)
			require.NotNil(t, r.Lag, "%s", r.Component)
		}
	})

	t.Run("a Kafka client and the registry on demo.env's addresses", func(t *testing.T) {
		cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(env["KAFKA_BROKERS"], ",")...),
			kgo.ConsumeTopics("alertsync.outcomes"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		require.NoError(t, err)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		topics, err := kadm.NewClient(cl).ListTopics(ctx)
		require.NoError(t, err)
		for _, name := range []string{"nomis.oms_owner.offender_alerts", "dps.public.alert", "alertsync.commands.dps", "alertsync.commands.nomis", "alertsync.outcomes"} {
			require.True(t, topics.Has(name), "topic %s listed (have %v)", name, topics.Names())
		}
		fs := cl.PollRecords(ctx, 10)
		require.NoError(t, fs.Err0(), "reading alertsync.outcomes")
		require.Positive(t, fs.NumRecords(), "outcome records read through the embedded broker")
		resp, err := http.Get(env["REGISTRY_URL"] + "/subjects") //nolint:noctx // a test against loopback
		require.NoError(t, err)
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		require.Contains(t, string(body), "alertsync.outcomes-value", "the registry lists the subjects")
	})

	t.Run("SIGKILL and restart lose and repeat nothing", func(t *testing.T) {
		const n = 5
		for i := range n {
			insertNOMIS(t, nomis, nomisBooking, fmt.Sprintf("kill NOMIS %d", i))
			insertDPS(t, dps, prisoner, fmt.Sprintf("kill DPS %d", i))
		}
		time.Sleep(300 * time.Millisecond) // some in flight, some synced
		p.Kill(t)
		require.NoError(t, os.Remove(filepath.Join(dataDir, "demo.env")))
		_ = dps.Close(ctx)        // the server may be gone already; new connections follow
		_ = nomis.Close(ctx)      // as above
		p = start(top, "restart") // the process outlives this subtest
		env = readEnv(t, filepath.Join(dataDir, "demo.env"))
		dps, nomis = connect(t, env["DPS_DSN"]), connect(t, env["NOMIS_DSN"])
		insertNOMIS(t, nomis, nomisBooking, "kill NOMIS after")
		insertDPS(t, dps, prisoner, "kill DPS after")
		eventually(t, 60*time.Second, "every change made around the kill reaches the other side", func() bool {
			return count(t, dps, `SELECT count(*) FROM alert WHERE description LIKE 'kill NOMIS %'`) == n+1 &&
				count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts WHERE comment_text LIKE 'kill DPS %'`) == n+1
		})
		time.Sleep(3 * time.Second)
		require.Equal(t, want+2+2*(n+1), count(t, dps, `SELECT count(*) FROM alert`), "DPS holds each alert once")
		require.Equal(t, nomisTotal+2+2*(n+1), count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts`), "NOMIS holds each alert once")
		require.Zero(t, count(t, dps, `SELECT count(*) FROM (SELECT description FROM alert WHERE description LIKE 'kill %' GROUP BY description HAVING count(*) > 1) d`), "no DPS duplicates")
		require.Zero(t, count(t, nomis, `SELECT count(*) FROM (SELECT comment_text FROM oms_owner.offender_alerts WHERE comment_text LIKE 'kill %' GROUP BY comment_text HAVING count(*) > 1) d`), "no NOMIS duplicates")
		require.Equal(t, count(t, dps, `SELECT count(*) FROM alert WHERE description LIKE 'kill NOMIS %'`),
			count(t, dps, `SELECT count(*) FROM audit_event e JOIN alert a ON a.id = e.alert_id WHERE a.description LIKE 'kill NOMIS %' AND e.action = 'CREATED'`),
			"one CREATED audit event per alert from NOMIS")
	})

	t.Run("reconcile is clean", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "reconcile", "--json")
		cmd.Env = proctest.Env(map[string]string{"ALERTSYNC_DPS_DSN": env["DPS_DSN"], "ALERTSYNC_NOMIS_DSN": env["NOMIS_DSN"],
			"ALERTSYNC_NOMIS_DIALECT": "postgres"})
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "alertsync reconcile on the demo's databases:\n%s", out)
	})

	t.Run("admin page in headless Chromium", func(t *testing.T) {
		dom := dumpDOM(t, chromium, "http://"+adminAddr+"/")
		for _, c := range demo.Components() {
			require.Contains(t, dom, `data-component="`+c+`"`, "the page lists %s", c)
		}
		require.Contains(t, dom, "All components are running.")
		require.NotContains(t, dom, `class="failed"`)
		require.Contains(t, dom, `http-equiv="refresh"`, "the page refreshes by itself")
	})

	t.Run("SIGTERM stops cleanly", func(t *testing.T) {
		require.NoError(t, p.Stop(60*time.Second), "exit status of a stopped demo")
		for _, c := range []string{"dps", "nomis"} {
			_, err := os.Stat(filepath.Join(dataDir, c, "data", "postmaster.pid"))
			require.ErrorIs(t, err, os.ErrNotExist, "the %s cluster is stopped", c)
		}
	})

	t.Run("start after a clean stop resumes", func(t *testing.T) {
		require.NoError(t, os.Remove(filepath.Join(dataDir, "demo.env")))
		p = start(top, "resume")
		env = readEnv(t, filepath.Join(dataDir, "demo.env"))
		dps, nomis = connect(t, env["DPS_DSN"]), connect(t, env["NOMIS_DSN"])
		before := [2]int{count(t, dps, `SELECT count(*) FROM alert`), count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts`)}
		insertNOMIS(t, nomis, nomisBooking, "after resume")
		eventually(t, 30*time.Second, "a NOMIS insert after the resume reaches DPS", func() bool {
			return count(t, dps, `SELECT count(*) FROM alert WHERE description = 'after resume'`) == 1
		})
		time.Sleep(2 * time.Second)
		require.Equal(t, [2]int{before[0] + 1, before[1] + 1},
			[2]int{count(t, dps, `SELECT count(*) FROM alert`), count(t, nomis, `SELECT count(*) FROM oms_owner.offender_alerts`)},
			"no sample prisoner seeded twice, no alert loaded twice")
		require.NoError(t, p.Stop(60*time.Second))
	})
}

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("headless Chromium is needed to load the demo's admin page: install it with `apt-get install chromium` (or run ./scripts/deps.sh)")
	return ""
}

func dumpDOM(t *testing.T, chromium, url string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	out, err := cmd.Output()
	require.NoError(t, err, "running %s --headless --dump-dom", chromium)
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	var lc net.ListenConfig
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// waitReady waits until /readyz answers 200 and the demo has written envPath
// (after the previous run's file is gone: --reset, or the removal below).
func waitReady(t *testing.T, p *proctest.Proc, base, envPath string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if p.Exited() {
			t.Fatalf("the demo exited before it was ready: %v\n%s", p.Wait(), p.LogTail())
		}
		req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, base+"/readyz", nil)
		require.NoError(t, err)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if _, err := os.Stat(envPath); resp.StatusCode == http.StatusOK && err == nil {
				return
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("the demo's /readyz was not 200 within %s\n%s", limit, p.LogTail())
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path) //nolint:gosec // the test's own data directory
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(k, "#") {
			env[k] = strings.Trim(v, "'")
		}
	}
	require.NoError(t, sc.Err())
	return env
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

func count(t *testing.T, conn *pgx.Conn, query string, args ...any) int {
	t.Helper()
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), query, args...).Scan(&n), query)
	return n
}

func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", limit, what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// insertNOMIS adds an alert to booking as a NOMIS user would.
func insertNOMIS(t *testing.T, conn *pgx.Conn, booking int64, comment string) {
	t.Helper()
	_, err := conn.Exec(context.Background(), `INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code,
		alert_status, alert_date, comment_text, caseload_type)
	SELECT b.offender_book_id, b.root_offender_id, COALESCE(MAX(a.alert_seq), 0) + 1, 'X', 'XA', 'ACTIVE', current_date, $2, 'INST'
	FROM oms_owner.offender_bookings b LEFT JOIN oms_owner.offender_alerts a USING (offender_book_id)
	WHERE b.offender_book_id = $1 GROUP BY b.offender_book_id, b.root_offender_id`, booking, comment)
	require.NoError(t, err)
}

// insertDPS adds an alert with its CREATED audit event as the DPS service would.
func insertDPS(t *testing.T, conn *pgx.Conn, prisoner, description string) {
	t.Helper()
	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	_, err = tx.Exec(ctx, `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, prison_code_when_created, version)
		SELECT $1, id, $2, $3, current_date, localtimestamp, 'MDI', 1 FROM alert_code WHERE code = 'XA'`, id, prisoner, description)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
		VALUES ($1, $2, 'CREATED', 'Alert created', localtimestamp, 'DEMO_USER', 'Demo User', 'DPS')`, uuid.Must(uuid.NewV7()), id)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}
