//go:build broker

package nomis

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
)

// Crash test parameters.
const (
	crashChanges  = 50_000 // changes of the workload
	crashWorkers  = 3      // goroutines committing concurrently, each on keys of its own
	crashBigTxn   = 5_000  // changes of each of the two large transactions followed by a kill
	crashBookings = 200    // bookings the alerts spread over
	crashDuration = 24 * time.Second
)

// TestCrashSIGKILL kills the real `alertsync capture nomis` process (SIGKILL
// to its process group) at random moments while it captures a workload of
// 50,000 inserts, updates and deletes of OFFENDER_ALERTS committed by three
// goroutines in transactions of 1 to 5,000 changes (some begun early and
// committed seconds later, after others), once during start-up and right
// after two large transactions commit, restarting it each time, against a
// real Kafka broker. When the journal is empty it reads the topic, read
// committed, and checks the guarantees of the journal capture:
//
//   - every committed change (key + the version the workload writes into
//     COMMENT_TEXT, and each delete) is in Kafka, and nothing else;
//   - per key, records appear in commit order: source.position grows, and a
//     record at or below a position already seen must be an exact repeat of
//     the record seen there (a duplicate), never a reordering;
//   - every delete is followed by its tombstone.
func TestCrashSIGKILL(t *testing.T) {
	began := time.Now()
	bin := buildCapture(t)
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.NOMISSchemaSQL())
	db.Exec(t, deploy.NOMISSeedSQL())
	db.Exec(t, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT i, 'C' || lpad(i::text, 4, '0') || 'DE', i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT i, TIMESTAMP '2024-03-01 10:00:00', i, i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, crashBookings))
	brokers := kafkatest.Real(t)
	reg, srcl := srtest.New(t)
	adm := kadm.NewClient(kafkatest.Client(t, brokers, kgo.MetadataMinAge(10*time.Millisecond)))

	prefix := kafkatest.Topic(t, "ncrash") + "."
	cr := &nomisCrasher{t: t, db: db, adm: adm, bin: bin, logDir: t.TempDir(),
		topic: prefix + "nomis.oms_owner.offender_alerts", began: began,
		env: captureEnv(db.DSN, brokers, reg.URL(), prefix, map[string]string{"ALERTSYNC_CAPTURE_RESYNC_DELAY": "300ms"})}

	// The first start migrates the journal (capture.migrate) and publishes
	// the offenders and bookings written before it (no triggers yet: none).
	cr.start()
	cr.cur.waitCapturing(t, 2*time.Minute)

	wl := newNomisWorkload()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	big := make(chan crashBigReq)
	g, gctx := errgroup.WithContext(ctx)
	wlStart := time.Now()
	for w := range crashWorkers {
		g.Go(func() error { return wl.run(gctx, db, w, big) })
	}
	wlDone := make(chan error, 1)
	go func() { wlDone <- g.Wait() }()
	// Resync requests, as dlq redrive writes them, all through the kills:
	// each must bring a REDRIVE snapshot of its prisoner.
	reqCtx, stopRequests := context.WithCancel(ctx)
	reqDone := make(chan map[string]bool, 1)
	reqDB := db.SQL(t)
	go func() { reqDone <- requestResyncsUntil(reqCtx, t, reqDB) }()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)) //nolint:gosec // test timing, not security
	var (
		wlErr         error
		startupKilled bool
	)
	for running := true; running; {
		select {
		case wlErr = <-wlDone:
			running = false
		case <-time.After(time.Second + time.Duration(rng.Int64N(int64(2*time.Second)))):
			cr.kill("mid-batch: random moment")
			if !startupKilled && len(cr.kills) >= 3 {
				startupKilled = true
				cr.start()
				time.Sleep(50*time.Millisecond + time.Duration(rng.Int64N(int64(250*time.Millisecond))))
				cr.kill("start-up")
			}
			time.Sleep(time.Duration(rng.Int64N(int64(500 * time.Millisecond))))
			cr.start()
			cr.cur.waitCapturing(t, time.Minute)
		case req := <-big:
			close(req.grant)
			select {
			case <-req.committed:
			case wlErr = <-wlDone:
				require.NoError(t, wlErr)
			}
			time.Sleep(req.delay)
			cr.kill(fmt.Sprintf("%d-change transaction committed %s before", crashBigTxn, req.delay))
			cr.start()
			cr.cur.waitCapturing(t, time.Minute)
		}
	}
	require.NoError(t, wlErr, "workload")
	wlTook := time.Since(wlStart)
	wl.finish()
	stopRequests()
	requested := <-reqDone

	catchUp := time.Now()
	waitJournalEmpty(t, db, cr.cur, 3*time.Minute)
	caughtUp := time.Since(catchUp)
	// Every pending resync published (the capture removes each once Kafka
	// acknowledged its snapshot).
	waitNone(t, db, cr.cur, "SELECT count(*) FROM alertsync.alertsync_resync", "pending prisoner resyncs", time.Minute)
	ends := topictest.EndOffsets(ctx, t, adm, cr.topic)
	rd := topictest.Reader{Brokers: brokers, Registry: srcl, ReadCommitted: true}
	recs := topictest.As[rec](rd.ToEnds(t, cr.topic, ends))
	require.NoError(t, cr.cur.Stop(30*time.Second), "clean stop after the test\n%s", cr.cur.LogTail())

	v, problems := verifyNomisCrash(recs, wl.expected)
	require.Empty(t, problems, "%d records checked", len(recs))

	prisonerTopic := prefix + "nomis.alertsync.prisoner_alerts"
	snapshots := rd.ToEnds(t, prisonerTopic, topictest.EndOffsets(ctx, t, adm, prisonerTopic))
	redriven, nRedriven := map[string]int{}, 0
	for _, r := range topictest.As[rec](snapshots) {
		if s := snapOf(t, r); s.reason == ReasonRedrive {
			redriven[s.no]++
			nRedriven++
		}
	}
	require.NotEmpty(t, requested, "resync requests written")
	for no := range requested {
		require.Positive(t, redriven[no], "no REDRIVE snapshot of %s, requested during the kills", no)
	}

	for i, k := range cr.kills {
		t.Logf("kill %2d at %6s  %-52s topic at %d records", i+1, k.at.Round(10*time.Millisecond), k.reason, k.records)
	}
	t.Logf("kills: %d; restarts: %d; clean stop at the end", len(cr.kills), cr.starts-1)
	t.Logf("workload: %d changes (%d inserts, %d updates, %d deletes) in %d transactions of 1 to %d changes (%d committed late) from %d goroutines in %s",
		wl.total(), wl.count[crashInsert], wl.count[crashUpdate], wl.count[crashDelete], wl.txns, wl.largest, wl.late, crashWorkers, wlTook.Round(time.Millisecond))
	t.Logf("topic %s: %d records: %d change records, %d tombstones", cr.topic, len(recs), v.changes, v.tombstones)
	t.Logf("duplicates: %d (%d change records, %d tombstones)", v.dupRecords+v.dupTombstones, v.dupRecords, v.dupTombstones)
	t.Logf("resync requests: %d prisoners requested, %d REDRIVE snapshots of %d prisoners on %s", len(requested), nRedriven, len(redriven), prisonerTopic)
	t.Logf("caught up %s after the workload; %s in all", caughtUp.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// nomisCrasher starts and kills the capture process and records each kill.
type nomisCrasher struct {
	t      *testing.T
	db     *pgtest.DB
	adm    *kadm.Client
	bin    string
	env    []string
	logDir string
	topic  string
	began  time.Time

	cur    *captureProc
	starts int
	kills  []nomisKill
}

type nomisKill struct {
	reason  string
	at      time.Duration
	records int64
}

func (c *nomisCrasher) start() {
	c.t.Helper()
	c.starts++
	c.cur = startCapture(c.t, c.bin, c.env, filepath.Join(c.logDir, fmt.Sprintf("capture-%02d.log", c.starts)))
}

// kill SIGKILLs the running process, waits until its sessions are gone (the
// advisory lock with them), and records the topic's size.
func (c *nomisCrasher) kill(reason string) {
	c.t.Helper()
	if c.cur.Exited() {
		c.t.Fatalf("capture exited on its own before the kill (%s): %v\n%s", reason, c.cur.Wait(), c.cur.LogTail())
	}
	at := time.Since(c.began)
	c.cur.Kill(c.t)
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		n := pgtest.QueryValue[int64](c.t, c.db, `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'alertsync capture nomis'`)
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("capture sessions still open 30s after the kill")
		}
	}
	c.kills = append(c.kills, nomisKill{reason: reason, at: at,
		records: topictest.Sum(topictest.EndOffsets(context.Background(), c.t, c.adm, c.topic))})
}

type crashOp int

const (
	crashInsert crashOp = iota
	crashUpdate
	crashDelete
)

// crashEvent is one committed row version: a write (insert or update) of
// version, or the delete of the row at version.
type crashEvent struct {
	deleted bool
	version int
}

func (e crashEvent) String() string {
	if e.deleted {
		return fmt.Sprintf("delete@v%d", e.version)
	}
	return fmt.Sprintf("write@v%d", e.version)
}

// crashBigReq asks the killer to stand by while a large transaction commits;
// the killer closes grant, the worker commits and closes committed, and the
// killer kills delay later.
type crashBigReq struct {
	grant, committed chan struct{}
	delay            time.Duration
}

// The workload: key index k is alert (1 + k % crashBookings, 1 + k /
// crashBookings); each goroutine owns the indexes with k % crashWorkers ==
// its number, so it knows each key's versions without locking. The version
// (COMMENT_TEXT "v<n>") counts a key's row versions across deletes and
// re-inserts.
type nomisWorkload struct {
	expected map[string][]crashEvent // per key "book/seq", in commit order
	count    [3]int
	txns     int
	largest  int
	late     int
	parts    [crashWorkers]*nomisWorker
}

type nomisWorker struct {
	expected map[string][]crashEvent
	alive    []int
	aliveAt  map[int]int
	dead     []int
	version  map[int]int
	nextKey  int
	count    [3]int
	txns     int
	largest  int
	late     int
}

func newNomisWorkload() *nomisWorkload {
	wl := &nomisWorkload{expected: map[string][]crashEvent{}}
	for w := range crashWorkers {
		wl.parts[w] = &nomisWorker{expected: map[string][]crashEvent{}, aliveAt: map[int]int{}, version: map[int]int{}, nextKey: w}
	}
	return wl
}

func crashKey(k int) (book, seq int) { return 1 + k%crashBookings, 1 + k/crashBookings }

func crashKeyString(k int) string {
	b, s := crashKey(k)
	return fmt.Sprintf("%d/%d", b, s)
}

func (s *nomisWorker) addAlive(k int) {
	s.aliveAt[k] = len(s.alive)
	s.alive = append(s.alive, k)
}

func (s *nomisWorker) removeAlive(k int) {
	i := s.aliveAt[k]
	last := s.alive[len(s.alive)-1]
	s.alive[i], s.aliveAt[last] = last, i
	s.alive = s.alive[:len(s.alive)-1]
	delete(s.aliveAt, k)
}

func (wl *nomisWorkload) total() int { return wl.count[0] + wl.count[1] + wl.count[2] }

// crashTxnSize draws a transaction size: mostly small, sometimes hundreds.
func crashTxnSize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 60:
		return 1 + rng.IntN(5)
	case r < 90:
		return 5 + rng.IntN(50)
	default:
		return 50 + rng.IntN(450)
	}
}

// run commits worker w's share at a steady pace, so that it lasts about
// crashDuration; worker 0 commits the two large transactions; about one
// transaction in 25 waits 0.3 to 2 s before its commit (begun early,
// committed late, after others).
func (wl *nomisWorkload) run(ctx context.Context, db *pgtest.DB, w int, big chan<- crashBigReq) error {
	s := wl.parts[w]
	rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano()))) //nolint:gosec // test data
	share := crashChanges / crashWorkers
	if w == 0 {
		share += crashChanges % crashWorkers
	}
	bigAt := []int{share * 3 / 10, share * 65 / 100}
	delays := []time.Duration{0, 300 * time.Millisecond}
	rate := float64(share) / crashDuration.Seconds()
	start := time.Now()
	for done := 0; done < share; {
		n := crashTxnSize(rng)
		var req *crashBigReq
		if w == 0 && len(bigAt) > 0 && done >= bigAt[0] {
			n = crashBigTxn
			req = &crashBigReq{grant: make(chan struct{}), committed: make(chan struct{}), delay: delays[0]}
			bigAt, delays = bigAt[1:], delays[1:]
		}
		n = min(n, share-done)
		var hold time.Duration
		if req == nil && rng.IntN(25) == 0 {
			hold = 300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond)))
		}
		if err := wl.commit(ctx, db, s, rng, n, hold, req, big); err != nil {
			return fmt.Errorf("worker %d: %w", w, err)
		}
		done += n
		if wait := time.Until(start.Add(time.Duration(float64(done) / rate * float64(time.Second)))); wait > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		}
	}
	return nil
}

// commit commits one transaction of n changes on s's keys, holding it open
// for hold before the commit.
func (wl *nomisWorkload) commit(ctx context.Context, db *pgtest.DB, s *nomisWorker, rng *rand.Rand, n int, hold time.Duration, req *crashBigReq, big chan<- crashBigReq) error {
	type keyed struct {
		key int
		ev  crashEvent
		op  crashOp
	}
	var (
		batch  pgx.Batch
		events []keyed
	)
	batch.Queue("SELECT set_config('nomis.audit_module_name', 'OIDALERT', true)")
	touched := map[int]bool{}
	for range n {
		var op crashOp
		switch r := rng.IntN(100); {
		case len(s.alive) < 100 || r < 25:
			op = crashInsert
		case r < 80:
			op = crashUpdate
		default:
			op = crashDelete
		}
		switch op {
		case crashInsert:
			var key int
			if len(s.dead) > 0 && rng.IntN(2) == 0 {
				i := rng.IntN(len(s.dead))
				key = s.dead[i]
				s.dead[i] = s.dead[len(s.dead)-1]
				s.dead = s.dead[:len(s.dead)-1]
			} else {
				key = s.nextKey
				s.nextKey += crashWorkers
			}
			s.version[key]++
			s.addAlive(key)
			v := s.version[key]
			book, seq := crashKey(key)
			batch.Queue(`INSERT INTO oms_owner.offender_alerts
				(offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
				VALUES ($1, $2, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-06-02 00:00:00', $3, 'INST')`, book, seq, "v"+strconv.Itoa(v))
			events = append(events, keyed{key, crashEvent{version: v}, op})
		case crashUpdate:
			key := s.alive[rng.IntN(len(s.alive))]
			s.version[key]++
			v := s.version[key]
			book, seq := crashKey(key)
			batch.Queue(`UPDATE oms_owner.offender_alerts SET comment_text = $3, modify_datetime = TIMESTAMP '2024-07-01 09:30:00'
				WHERE offender_book_id = $1 AND alert_seq = $2 AND comment_text = $4`, book, seq, "v"+strconv.Itoa(v), "v"+strconv.Itoa(v-1))
			events = append(events, keyed{key, crashEvent{version: v}, op})
		case crashDelete:
			key := s.alive[rng.IntN(len(s.alive))]
			s.removeAlive(key)
			s.dead = append(s.dead, key)
			v := s.version[key]
			book, seq := crashKey(key)
			batch.Queue(`DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2 AND comment_text = $3`,
				book, seq, "v"+strconv.Itoa(v))
			events = append(events, keyed{key, crashEvent{deleted: true, version: v}, op})
		}
		touched[events[len(events)-1].key] = true
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	br := tx.SendBatch(ctx, &batch)
	if _, err := br.Exec(); err != nil {
		_ = br.Close()
		return fmt.Errorf("setting the module: %w", err)
	}
	for i, e := range events {
		ct, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("change %d (%v of key %s): %w", i, e.ev, crashKeyString(e.key), err)
		}
		if ct.RowsAffected() != 1 {
			_ = br.Close()
			return fmt.Errorf("change %d (%v of key %s) affected %d rows", i, e.ev, crashKeyString(e.key), ct.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("closing batch: %w", err)
	}
	if hold > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(hold):
		}
		s.late++
	}
	if req != nil {
		select {
		case big <- *req:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-req.grant
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	if req != nil {
		close(req.committed)
	}
	for _, e := range events {
		k := crashKeyString(e.key)
		s.expected[k] = append(s.expected[k], e.ev)
		s.count[e.op]++
	}
	s.txns++
	s.largest = max(s.largest, n)
	return nil
}

// finish folds the workers' expectations and counters into wl.
func (wl *nomisWorkload) finish() {
	for _, s := range wl.parts {
		for k, evs := range s.expected {
			wl.expected[k] = evs
		}
		for i := range wl.count {
			wl.count[i] += s.count[i]
		}
		wl.txns += s.txns
		wl.largest = max(wl.largest, s.largest)
		wl.late += s.late
	}
}

type nomisVerdict struct {
	changes, tombstones       int
	dupRecords, dupTombstones int
}

type crashPos struct{ commit, change int64 }

func (p crashPos) less(q crashPos) bool {
	return p.commit < q.commit || p.commit == q.commit && p.change < q.change
}

// crashVersionOf reads the workload's version from a row's comment_text.
func crashVersionOf(r rec, which string) int {
	s, _ := r.field(which, "comment_text").(string)
	v, err := strconv.Atoi(strings.TrimPrefix(s, "v"))
	if err != nil || !strings.HasPrefix(s, "v") {
		return -1
	}
	return v
}

// verifyNomisCrash checks the alert records, in partition order, against
// the committed workload and returns what it counted and the problems found
// (at most 20).
func verifyNomisCrash(recs []rec, expected map[string][]crashEvent) (nomisVerdict, []string) {
	type keyState struct {
		last        crashPos
		any         bool
		seen        map[crashPos]string
		events      []crashEvent
		pendingTomb bool
		tombIsDup   bool
	}
	var (
		v    nomisVerdict
		keys = map[string]*keyState{}
		errs []string
	)
	fail := func(format string, a ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	for _, r := range recs {
		key := r.keyString()
		ks := keys[key]
		if ks == nil {
			ks = &keyState{seen: map[crashPos]string{}}
			keys[key] = ks
		}
		where := fmt.Sprintf("key %s, %s[%d]@%d", key, r.Topic, r.Partition, r.Offset)
		if r.Value == nil {
			v.tombstones++
			switch {
			case !ks.pendingTomb:
				fail("%s: tombstone without a delete before it", where)
			case ks.tombIsDup:
				v.dupTombstones++
			}
			ks.pendingTomb, ks.tombIsDup = false, false
			continue
		}
		commit, change := r.position()
		pos := crashPos{commit, change}
		src := r.source()
		fp := fmt.Sprintf("%v|%v|%v|%v|%v", r.op(), src["position"], src["txId"], r.Value["before"], r.Value["after"])
		if ks.any && !ks.last.less(pos) {
			prev, ok := ks.seen[pos]
			switch {
			case !ok:
				fail("%s: %s at %v after %v: out of commit order, and no record was seen at that position", where, r.op(), pos, ks.last)
			case prev != fp:
				fail("%s: %s at %v repeats a position with different content:\n  first: %s\n  again: %s", where, r.op(), pos, prev, fp)
			default:
				v.dupRecords++
			}
			if r.op() == "d" {
				ks.tombIsDup, ks.pendingTomb = !ks.pendingTomb, true
			}
			continue
		}
		if ks.pendingTomb {
			fail("%s: %s after a delete that had no tombstone", where, r.op())
		}
		ks.any, ks.last, ks.seen[pos] = true, pos, fp
		v.changes++
		switch r.op() {
		case "c", "u":
			ks.events = append(ks.events, crashEvent{version: crashVersionOf(r, "after")})
		case "d":
			ks.events = append(ks.events, crashEvent{deleted: true, version: crashVersionOf(r, "before")})
			ks.pendingTomb = true
		default:
			fail("%s: unexpected op %q", where, r.op())
		}
	}
	var mismatched []string
	for key, want := range expected {
		var got []crashEvent
		if ks := keys[key]; ks != nil {
			got = ks.events
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			mismatched = append(mismatched, key)
		}
	}
	for key, ks := range keys {
		if _, ok := expected[key]; !ok && len(ks.events) > 0 {
			mismatched = append(mismatched, key)
		}
		if ks.pendingTomb {
			fail("key %s: the last delete has no tombstone", key)
		}
	}
	sort.Strings(mismatched)
	for i, key := range mismatched {
		if i == 5 {
			fail("… and %d more keys whose changes in Kafka differ from the committed ones", len(mismatched)-5)
			break
		}
		var got []crashEvent
		if ks := keys[key]; ks != nil {
			got = ks.events
		}
		fail("key %s: Kafka has %v, committed %v", key, got, expected[key])
	}
	return v, errs
}

// TestVerifyNomisCrashFindsProblems shows that the crash test's checker
// fails on each kind of loss, reordering or bad repeat it is there to catch.
func TestVerifyNomisCrashFindsProblems(t *testing.T) {
	t.Parallel()
	mk := func(off int64, op string, commit, change int64, version int) rec {
		r := rec{Topic: "alerts", Offset: off, Key: map[string]any{"offender_book_id": int64(1), "alert_seq": int32(1)}}
		if op == "" {
			return r // tombstone
		}
		row := map[string]any{"comment_text": map[string]any{"string": "v" + strconv.Itoa(version)}}
		r.Value = map[string]any{"op": op, "source": map[string]any{"position": map[string]any{"commit": commit, "change": change}}}
		img := map[string]any{"row": row}
		if op == "d" {
			r.Value["before"] = img
		} else {
			r.Value["after"] = img
		}
		return r
	}
	// Key 1/1 inserted at 100, updated at 200 (published twice: a
	// duplicate), deleted at 300 with its tombstone.
	base := func() []rec {
		return []rec{mk(0, "c", 100, 1, 1), mk(1, "u", 200, 2, 2), mk(2, "u", 200, 2, 2), mk(3, "d", 300, 3, 2), mk(4, "", 0, 0, 0)}
	}
	expected := map[string][]crashEvent{"1/1": {{version: 1}, {version: 2}, {deleted: true, version: 2}}}
	v, problems := verifyNomisCrash(base(), expected)
	require.Empty(t, problems)
	require.Equal(t, 1, v.dupRecords)
	require.Equal(t, 3, v.changes)

	for _, tc := range []struct {
		name string
		recs func() []rec
		want string
	}{
		{"a change lost", func() []rec { r := base(); return append(r[:1], r[3:]...) }, "Kafka has [write@v1 delete@v2]"},
		{"a change out of order", func() []rec { r := base(); r[2] = mk(2, "u", 150, 9, 2); return r }, "out of commit order"},
		{"a repeat that differs", func() []rec { r := base(); r[2] = mk(2, "u", 200, 2, 7); return r }, "different content"},
		{"a delete without tombstone", func() []rec { return base()[:4] }, "has no tombstone"},
		{"a tombstone without delete", func() []rec { return append(base(), mk(5, "", 0, 0, 0)) }, "tombstone without a delete"},
		{"a change never committed", func() []rec { return append(base(), mk(5, "c", 400, 4, 3)) }, "Kafka has [write@v1 write@v2 delete@v2 write@v3]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, problems := verifyNomisCrash(tc.recs(), expected)
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "\n"), tc.want)
		})
	}
}

// requestResyncsUntil writes a resync request for a random crash prisoner
// through the dialect, as dlq redrive does, every 100-400 ms until ctx
// ends, and returns the prison numbers requested.
func requestResyncsUntil(ctx context.Context, t *testing.T, h *sql.DB) map[string]bool {
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 11)) //nolint:gosec // test data, not security
	d := newPostgres(Options{})
	requested := map[string]bool{}
	for {
		select {
		case <-ctx.Done():
			return requested
		case <-time.After(100*time.Millisecond + time.Duration(rng.Int64N(int64(300*time.Millisecond)))):
		}
		book := 1 + rng.IntN(crashBookings)
		err := func() error {
			conn, err := h.Conn(ctx)
			if err != nil {
				return err
			}
			defer func() { _ = conn.Close() }()
			return d.RequestResyncs(ctx, conn, []ResyncRequest{{BookID: int64(book), Reason: ReasonRedrive}})
		}()
		if ctx.Err() != nil {
			return requested // the request may or may not have committed: not counted
		}
		if err != nil {
			t.Errorf("writing a resync request: %v", err)
			return requested
		}
		requested[fmt.Sprintf("C%04dDE", book)] = true
	}
}
