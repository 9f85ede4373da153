//go:build broker

package dps

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
)

// Crash test parameters.
const (
	crashPreload  = 20_000 // rows present before the first start (the initial snapshot)
	crashChanges  = 50_000 // changes of the workload, committed while the capture is killed and restarted
	crashWorkers  = 3      // goroutines committing the workload concurrently, each on keys of its own
	crashBigTxn   = 5_000  // changes of each of the two large transactions followed by a kill
	crashDuration = 24 * time.Second
)

// TestCrashSIGKILL kills the real `alertsync capture dps` process (SIGKILL to
// its process group) at the dangerous moments – twice during the initial
// snapshot, once during start-up, at random moments while it streams a
// workload of 50,000 inserts, updates and deletes committed by three
// goroutines in transactions of 1 to 5,000 changes, and right after two large
// transactions commit – restarting it each time, against a real Kafka broker.
// Then it checks guarantee 1 of DESIGN.md on the topic, read committed:
//
//   - every committed row version (key + the version column the workload
//     writes, and each delete) is in Kafka, and nothing else is;
//   - per key, records appear in commit order: source.position grows, and a
//     record at or below a position already seen must be an exact repeat of
//     the record seen there (a duplicate), never a reordering;
//   - duplicates come only from the unconfirmed tail: every change record a
//     restarted process publishes has a commit LSN at or after the slot's
//     confirmed LSN when its predecessor was killed;
//   - every delete is followed by its tombstone, and the last snapshot holds
//     every pre-loaded row once.
func TestCrashSIGKILL(t *testing.T) {
	began := time.Now()
	bin := buildCapture(t)
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.DPSSchemaSQL())
	db.Exec(t, deploy.DPSSeedSQL())
	brokers := kafkatest.Real(t)
	reg, srcl := srtest.New(t)
	adm := kadm.NewClient(kafkatest.Client(t, brokers, kgo.MetadataMinAge(10*time.Millisecond)))

	prefix := kafkatest.Topic(t, "crash") + "."
	cr := &crasher{
		t: t, db: db, adm: adm, bin: bin, logDir: t.TempDir(),
		slot: "crash_capture", topic: prefix + "dps.public.alert", began: began,
	}
	cr.env = captureEnv(db.DSN, brokers, reg.URL(), prefix, cr.slot, "crash_pub", map[string]string{
		"ALERTSYNC_TOPICS_PARTITIONS": "3",
		"ALERTSYNC_CAPTURE_HEARTBEAT": "1s",
		// Fewer records in flight than rows to snapshot, so that the
		// snapshot advances with Kafka's acknowledgements and the kill at a
		// third of it lands before its end.
		"ALERTSYNC_CAPTURE_MAX_IN_FLIGHT": "5000",
	})

	wl := newCrashWorkload(alertCodeID(t, db, "XA"))
	wl.preload(t, db)

	// 1. The initial snapshot, killed just after it started and again
	// half-way, then taken to the end.
	cr.start()
	cr.waitSnapshotRow()
	cr.kill("snapshot: just started")
	require.False(t, cr.snapshotDone(), "the snapshot finished before the kill meant to interrupt it\n%s", cr.cur.LogTail())
	// Killed by its own failure point as it emits the row a third of the way
	// through: a kill by the test after it saw a third published raced the
	// rest of the snapshot on a loaded machine.
	cr.startArmed(fmt.Sprintf("capture_dps.snapshot_row=%d", crashPreload/3))
	cr.died("snapshot: a third emitted")
	require.False(t, cr.snapshotDone(), "the snapshot finished before the kill meant to interrupt it\n%s", cr.cur.LogTail())
	cr.start()
	cr.cur.waitStreaming(t, 2*time.Minute)
	require.True(t, cr.snapshotDone())

	// 2. The workload, killed at random moments, during one start-up, and
	// right after two large transactions commit.
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
			cr.kill("streaming: random moment")
			if !startupKilled && len(cr.kills) >= 4 {
				startupKilled = true
				cr.start()
				time.Sleep(50*time.Millisecond + time.Duration(rng.Int64N(int64(250*time.Millisecond))))
				cr.kill("start-up")
			}
			time.Sleep(time.Duration(rng.Int64N(int64(500 * time.Millisecond))))
			cr.start()
			cr.cur.waitStreaming(t, time.Minute)
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
			cr.cur.waitStreaming(t, time.Minute)
		}
	}
	require.NoError(t, wlErr, "workload")
	wlTook := time.Since(wlStart)
	wl.finish()

	// 3. Catch up, read everything, stop cleanly, check.
	catchUp := time.Now()
	end := walLSN(t, db)
	for deadline := time.Now().Add(3 * time.Minute); slotConfirmed(t, db, cr.slot) < end; time.Sleep(100 * time.Millisecond) {
		if cr.cur.Exited() {
			t.Fatalf("capture exited while catching up: %v\n%s", cr.cur.Wait(), cr.cur.LogTail())
		}
		if time.Now().After(deadline) {
			t.Fatalf("capture confirmed %s 3 minutes after the workload, want %s\n%s", slotConfirmed(t, db, cr.slot), end, cr.cur.LogTail())
		}
	}
	caughtUp := time.Since(catchUp)
	ends := topictest.EndOffsets(ctx, t, adm, cr.topic)
	rd := topictest.Reader{Brokers: brokers, Registry: srcl, ReadCommitted: true}
	recs := topictest.As[rec](rd.ToEnds(t, cr.topic, ends))
	require.NoError(t, cr.cur.Stop(30*time.Second), "clean stop after the test\n%s", cr.cur.LogTail())

	point := lsnOf(t, pgtest.QueryValue[string](t, db, "SELECT consistent_lsn::text FROM alertsync.capture_state WHERE slot_name = $1", cr.slot))
	v, problems := verifyCrash(recs, wl.expected, cr.kills, point, crashPreload)
	require.Empty(t, problems, "%d records checked", len(recs))

	for i, k := range cr.kills {
		t.Logf("kill %2d at %6s  %-52s confirmed %-12s topic at %d records", i+1, k.at.Round(10*time.Millisecond), k.reason, k.confirmed, topictest.Sum(k.ends))
	}
	t.Logf("kills: %d (%s); restarts: %d; clean stop at the end", len(cr.kills), cr.killSummary(), cr.starts-1)
	t.Logf("workload: %d changes (%d inserts, %d updates, %d deletes) in %d transactions of 1 to %d changes from %d goroutines in %s; %d rows pre-loaded",
		wl.total(), wl.count[crashInsert], wl.count[crashUpdate], wl.count[crashDelete], wl.txns, wl.largest, crashWorkers, wlTook.Round(time.Millisecond), crashPreload)
	t.Logf("topic %s: %d records: %d change records, %d tombstones, %d snapshot records (%d from the %d interrupted snapshots)",
		cr.topic, len(recs), v.changes, v.tombstones, v.snapshot, v.abortedSnapshot, 2)
	t.Logf("duplicates: %d (%d change records, %d tombstones), by restart: %s", v.dupRecords+v.dupTombstones, v.dupRecords, v.dupTombstones, v.dupsByRun)
	t.Logf("caught up %s after the workload; %s in all", caughtUp.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
}

// crasher starts and kills the capture process and records each kill.
type crasher struct {
	t      *testing.T
	db     *pgtest.DB
	adm    *kadm.Client
	bin    string
	env    []string
	logDir string
	slot   string
	topic  string
	began  time.Time

	cur    *captureProc
	starts int
	kills  []crashKill
}

// crashKill is the state after one kill: the slot's confirmed LSN and the
// topic's end offsets, which bound what the next process may republish.
type crashKill struct {
	reason    string
	at        time.Duration
	confirmed pglogrepl.LSN
	ends      map[int32]int64
}

func (c *crasher) start() {
	c.t.Helper()
	c.starts++
	c.cur = startCapture(c.t, c.bin, c.env, filepath.Join(c.logDir, fmt.Sprintf("capture-%02d.log", c.starts)))
}

// startArmed starts the capture with failure points armed (failpoint.Env).
func (c *crasher) startArmed(points string) {
	c.t.Helper()
	c.starts++
	env := append(append([]string{}, c.env...), failpoint.Env+"="+points)
	c.cur = startCapture(c.t, c.bin, env, filepath.Join(c.logDir, fmt.Sprintf("capture-%02d.log", c.starts)))
}

// died waits until the running process killed itself at an armed failure
// point, then records what kill records.
func (c *crasher) died(reason string) {
	c.t.Helper()
	select {
	case <-c.cur.Done():
	case <-time.After(2 * time.Minute):
		c.t.Fatalf("capture did not reach its failure point (%s)\n%s", reason, c.cur.LogTail())
	}
	at := time.Since(c.began)
	waitSlotIdle(c.t, c.db, c.slot, 30*time.Second)
	time.Sleep(200 * time.Millisecond)
	c.kills = append(c.kills, crashKill{reason: reason, at: at, confirmed: slotConfirmed(c.t, c.db, c.slot),
		ends: topictest.EndOffsets(context.Background(), c.t, c.adm, c.topic)})
}

// kill SIGKILLs the running process, waits until its sessions are gone, and
// records the slot's confirmed LSN and the topic's end offsets.
func (c *crasher) kill(reason string) {
	c.t.Helper()
	if c.cur.Exited() {
		c.t.Fatalf("capture exited on its own before the kill (%s): %v\n%s", reason, c.cur.Wait(), c.cur.LogTail())
	}
	at := time.Since(c.began)
	c.cur.Kill(c.t)
	waitSlotIdle(c.t, c.db, c.slot, 30*time.Second)
	time.Sleep(200 * time.Millisecond) // produce requests the broker had already received are appended
	c.kills = append(c.kills, crashKill{reason: reason, at: at, confirmed: slotConfirmed(c.t, c.db, c.slot),
		ends: topictest.EndOffsets(context.Background(), c.t, c.adm, c.topic)})
}

func (c *crasher) killSummary() string {
	n := map[string]int{}
	var order []string
	for _, k := range c.kills {
		kind, _, _ := strings.Cut(k.reason, ":")
		if strings.Contains(k.reason, "transaction committed") {
			kind = "after a large commit"
		}
		if n[kind] == 0 {
			order = append(order, kind)
		}
		n[kind]++
	}
	parts := make([]string, len(order))
	for i, k := range order {
		parts[i] = fmt.Sprintf("%s %d", k, n[k])
	}
	return strings.Join(parts, ", ")
}

// snapshotDone reads the capture's own record of its snapshot.
func (c *crasher) snapshotDone() bool {
	c.t.Helper()
	var done bool
	err := c.db.Pool.QueryRow(context.Background(), "SELECT snapshot_done FROM alertsync.capture_state WHERE slot_name = $1", c.slot).Scan(&done)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		c.t.Fatalf("reading capture state: %v", err)
	}
	return done
}

// waitSnapshotRow waits until the capture has recorded a snapshot in progress.
func (c *crasher) waitSnapshotRow() {
	c.t.Helper()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		var n int
		// Fails until the capture's migrations created the table.
		err := c.db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM alertsync.capture_state WHERE slot_name = $1 AND NOT snapshot_done", c.slot).Scan(&n)
		if err == nil && n > 0 {
			return
		}
		if c.cur.Exited() || time.Now().After(deadline) {
			c.t.Fatalf("no snapshot in progress (last error %v)\n%s", err, c.cur.LogTail())
		}
	}
}

// The workload: each goroutine owns the keys k with k % crashWorkers == its
// number, so that it knows each key's versions without locking; the version
// column counts a key's row versions across deletes and re-inserts.

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
	version int32
}

func (e crashEvent) String() string {
	if e.deleted {
		return fmt.Sprintf("delete@v%d", e.version)
	}
	return fmt.Sprintf("write@v%d", e.version)
}

type crashWorkload struct {
	codeID   int64
	expected map[int64][]crashEvent // per key, in commit order
	count    [3]int
	txns     int
	largest  int
	parts    [crashWorkers]*crashWorker
}

type crashWorker struct {
	expected map[int64][]crashEvent
	alive    crashKeySet
	dead     crashKeySet
	version  map[int64]int32 // latest version per key, alive or deleted
	nextKey  int64
	count    [3]int
	txns     int
	largest  int
}

func newCrashWorkload(codeID int64) *crashWorkload {
	wl := &crashWorkload{codeID: codeID, expected: map[int64][]crashEvent{}}
	for w := range crashWorkers {
		wl.parts[w] = &crashWorker{expected: map[int64][]crashEvent{}, version: map[int64]int32{},
			nextKey: crashPreload + 1 + int64(w)}
	}
	for k := int64(1); k <= crashPreload; k++ {
		s := wl.parts[k%crashWorkers]
		s.alive.add(k)
		s.version[k] = 1
	}
	return wl
}

func crashUUID(key int64) string { return fmt.Sprintf("00000000-0000-7000-8000-%012x", key) }

func crashKeyOf(id string) (int64, error) {
	if len(id) != 36 || !strings.HasPrefix(id, "00000000-0000-7000-8000-") {
		return 0, fmt.Errorf("alert id %q was not written by the workload", id)
	}
	return strconv.ParseInt(id[24:], 16, 64)
}

func (wl *crashWorkload) preload(t *testing.T, db *pgtest.DB) {
	t.Helper()
	db.Exec(t, fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, created_at, version)
		SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(i), 12, '0'))::uuid, %d, 'C' || lpad((i %% 10000)::text, 4, '0') || 'DE',
		       'pre-loaded ' || i, 'crash', date '2024-01-02', timestamp '2024-06-01 12:00:00', 1
		  FROM generate_series(1, %d) i`, wl.codeID, crashPreload))
}

func (wl *crashWorkload) total() int { return wl.count[0] + wl.count[1] + wl.count[2] }

// crashBigReq asks the killer to stand by while a large transaction commits; the
// killer closes grant, the worker commits and closes committed, and the
// killer kills delay later.
type crashBigReq struct {
	grant, committed chan struct{}
	delay            time.Duration
}

// run commits worker w's share of the workload at a steady pace, so that it
// lasts about crashDuration; worker 0 commits the two large transactions.
func (wl *crashWorkload) run(ctx context.Context, db *pgtest.DB, w int, big chan<- crashBigReq) error {
	s := wl.parts[w]
	rng := rand.New(rand.NewPCG(uint64(w)+1, uint64(time.Now().UnixNano()))) //nolint:gosec // test data
	budget := crashChanges / crashWorkers
	if w == 0 {
		budget += crashChanges % crashWorkers
	}
	share := budget
	bigAt := []int{share * 3 / 10, share * 65 / 100} // progress at which worker 0 commits a large one
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
		if err := wl.commit(ctx, db, s, rng, n, req, big); err != nil {
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

func crashTxnSize(rng *rand.Rand) int {
	switch r := rng.IntN(100); {
	case r < 55:
		return 1 + rng.IntN(3)
	case r < 85:
		return 4 + rng.IntN(37)
	case r < 98:
		return 41 + rng.IntN(260)
	default:
		return 301 + rng.IntN(1200)
	}
}

// commit commits one transaction of n changes on s's keys.
func (wl *crashWorkload) commit(ctx context.Context, db *pgtest.DB, s *crashWorker, rng *rand.Rand, n int, req *crashBigReq, big chan<- crashBigReq) error {
	type keyed struct {
		key int64
		ev  crashEvent
		op  crashOp
	}
	var (
		batch  pgx.Batch
		events []keyed
	)
	for range n {
		var op crashOp
		switch r := rng.IntN(100); {
		case s.alive.len() < 100 || r < 25: // half of them re-inserts of deleted keys
			op = crashInsert
		case r < 80:
			op = crashUpdate
		default:
			op = crashDelete
		}
		switch op {
		case crashInsert:
			var key int64
			if s.dead.len() > 0 && rng.IntN(2) == 0 { // re-insert a deleted key
				key = s.dead.pick(rng)
				s.dead.remove(key)
			} else {
				key = s.nextKey
				s.nextKey += crashWorkers
			}
			s.version[key]++
			s.alive.add(key)
			v := s.version[key]
			batch.Queue(`INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, created_at, version)
				VALUES ($1, $2, $3, $4, 'crash', '2024-01-02', '2024-06-01 12:00:00', $5)`,
				crashUUID(key), wl.codeID, fmt.Sprintf("D%04dEF", key%10000), fmt.Sprintf("inserted at v%d", v), v)
			events = append(events, keyed{key, crashEvent{version: v}, op})
		case crashUpdate:
			key := s.alive.pick(rng)
			s.version[key]++
			v := s.version[key]
			batch.Queue(`UPDATE alert SET version = $2, description = $3, last_modified_at = timestamp '2024-07-01 09:30:00' WHERE id = $1 AND version = $4`,
				crashUUID(key), v, fmt.Sprintf("updated to v%d", v), v-1)
			events = append(events, keyed{key, crashEvent{version: v}, op})
		case crashDelete:
			key := s.alive.pick(rng)
			s.alive.remove(key)
			s.dead.add(key)
			v := s.version[key]
			batch.Queue(`DELETE FROM alert WHERE id = $1 AND version = $2`, crashUUID(key), v)
			events = append(events, keyed{key, crashEvent{deleted: true, version: v}, op})
		}
	}
	tx, err := db.Pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	br := tx.SendBatch(ctx, &batch)
	for i, e := range events {
		ct, err := br.Exec()
		if err != nil {
			_ = br.Close()
			return fmt.Errorf("change %d (%v of key %d): %w", i, e.ev, e.key, err)
		}
		if ct.RowsAffected() != 1 {
			_ = br.Close()
			return fmt.Errorf("change %d (%v of key %d) affected %d rows", i, e.ev, e.key, ct.RowsAffected())
		}
	}
	if err := br.Close(); err != nil {
		return fmt.Errorf("closing batch: %w", err)
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
		s.expected[e.key] = append(s.expected[e.key], e.ev)
		s.count[e.op]++
	}
	s.txns++
	s.largest = max(s.largest, n)
	return nil
}

// finish folds the workers' expectations and counters into wl.
func (wl *crashWorkload) finish() {
	for _, s := range wl.parts {
		for k, evs := range s.expected {
			wl.expected[k] = evs
		}
		for i := range wl.count {
			wl.count[i] += s.count[i]
		}
		wl.txns += s.txns
		wl.largest = max(wl.largest, s.largest)
	}
}

// crashKeySet is a set of keys with uniform random picks.
type crashKeySet struct {
	keys []int64
	at   map[int64]int
}

func (s *crashKeySet) len() int { return len(s.keys) }

func (s *crashKeySet) add(k int64) {
	if s.at == nil {
		s.at = map[int64]int{}
	}
	s.at[k] = len(s.keys)
	s.keys = append(s.keys, k)
}

func (s *crashKeySet) remove(k int64) {
	i := s.at[k]
	last := s.keys[len(s.keys)-1]
	s.keys[i], s.at[last] = last, i
	s.keys = s.keys[:len(s.keys)-1]
	delete(s.at, k)
}

func (s *crashKeySet) pick(rng *rand.Rand) int64 { return s.keys[rng.IntN(len(s.keys))] }

type crashVerdict struct {
	changes, tombstones, snapshot, abortedSnapshot int
	dupRecords, dupTombstones                      int
	dupsByRun                                      string
}

// crashPos is source.position: (commit LSN, change LSN).
type crashPos struct{ commit, change int64 }

func (p crashPos) less(q crashPos) bool {
	return p.commit < q.commit || p.commit == q.commit && p.change < q.change
}

// verifyCrash checks the records of the alert topic, in partition order,
// against the workload; kills bound what each restarted process may
// republish, and point is the consistent LSN of the snapshot that completed.
// It returns what it counted and the problems found (at most 20).
// Keys 1 to preloaded must each be in that snapshot once, at version 1.
func verifyCrash(recs []rec, expected map[int64][]crashEvent, kills []crashKill, point pglogrepl.LSN, preloaded int64) (crashVerdict, []string) {
	type keyState struct {
		last        crashPos
		any         bool
		seen        map[crashPos]string // fingerprint of the record first seen at a position
		events      []crashEvent        // first occurrences of change records, in order
		pendingTomb bool                // a delete was seen and its tombstone not yet
		tombIsDup   bool                // the pending tombstone repeats one already seen
		snapshotted bool
	}
	var (
		v       crashVerdict
		keys    = map[int64]*keyState{}
		dupsRun = make([]int, len(kills)+1)
		errs    []string
	)
	fail := func(format string, a ...any) {
		if len(errs) < 20 {
			errs = append(errs, fmt.Sprintf(format, a...))
		}
	}
	for _, r := range recs {
		id, _ := schemas.Get[string](r.Key, "id")
		key, err := crashKeyOf(id)
		if err != nil {
			fail("%s[%d]@%d: %v", r.Topic, r.Partition, r.Offset, err)
			continue
		}
		ks := keys[key]
		if ks == nil {
			ks = &keyState{seen: map[crashPos]string{}}
			keys[key] = ks
		}
		run := 0 // the process that published r: one more than the kills before it
		for _, k := range kills {
			if r.Offset >= k.ends[r.Partition] {
				run++
			}
		}
		where := fmt.Sprintf("key %d, %s[%d]@%d (process %d)", key, r.Topic, r.Partition, r.Offset, run+1)
		if r.Value == nil { // tombstone
			v.tombstones++
			switch {
			case !ks.pendingTomb:
				fail("%s: tombstone without a delete before it", where)
			case ks.tombIsDup:
				v.dupTombstones++
				dupsRun[run]++
			}
			ks.pendingTomb, ks.tombIsDup = false, false
			continue
		}
		src := r.source()
		pm, _ := src["position"].(map[string]any)
		commit, ok1 := pm["commit"].(int64)
		change, ok2 := pm["change"].(int64)
		if !ok1 || !ok2 {
			fail("%s: source.position %v", where, src["position"])
			continue
		}
		pos := crashPos{commit, change}
		fp := fmt.Sprintf("%v|%v|%v|%v", r.op(), src, r.Value["before"], r.Value["after"])
		snap := r.op() == "r"
		if ks.any && !ks.last.less(pos) {
			prev, ok := ks.seen[pos]
			switch {
			case !ok:
				fail("%s: %s at %v after %v: out of commit order, and no record was seen at that position", where, r.op(), pos, ks.last)
			case prev != fp:
				fail("%s: %s at %v repeats a position with different content:\n  first: %s\n  again: %s", where, r.op(), pos, prev, fp)
			default:
				v.dupRecords++
				dupsRun[run]++
				if !snap && run > 0 && pglogrepl.LSN(commit) < kills[run-1].confirmed {
					fail("%s: republished %s at commit %s, below the LSN %s confirmed before the kill", where, r.op(), pglogrepl.LSN(commit), kills[run-1].confirmed)
				}
			}
			if r.op() == "d" {
				// A republished delete: its tombstone follows again, unless
				// the first one never made it.
				ks.tombIsDup, ks.pendingTomb = !ks.pendingTomb, true
			}
			continue
		}
		if ks.pendingTomb {
			fail("%s: %s after a delete that had no tombstone", where, r.op())
		}
		ks.any, ks.last, ks.seen[pos] = true, pos, fp
		if snap {
			v.snapshot++
			if pglogrepl.LSN(commit) != point {
				v.abortedSnapshot++
				continue
			}
			if ks.snapshotted {
				fail("%s: twice in the completed snapshot", where)
			}
			ks.snapshotted = true
			if ver := crashVersion(r.row("after")); ver != 1 || key > preloaded {
				fail("%s: snapshot record of version %d", where, ver)
			}
			continue
		}
		v.changes++
		if run > 0 && pglogrepl.LSN(commit) < kills[run-1].confirmed {
			fail("%s: %s at commit %s published after a restart from the confirmed LSN %s", where, r.op(), pglogrepl.LSN(commit), kills[run-1].confirmed)
		}
		switch r.op() {
		case "c", "u":
			ks.events = append(ks.events, crashEvent{version: crashVersion(r.row("after"))})
		case "d":
			ks.events = append(ks.events, crashEvent{deleted: true, version: crashVersion(r.row("before"))})
			ks.pendingTomb = true
		default:
			fail("%s: unexpected op %q", where, r.op())
		}
	}
	missingSnap := 0
	for key := int64(1); key <= preloaded; key++ {
		if ks := keys[key]; ks == nil || !ks.snapshotted {
			missingSnap++
		}
	}
	if missingSnap > 0 {
		fail("%d pre-loaded rows missing from the completed snapshot", missingSnap)
	}
	var mismatched []int64
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
			fail("key %d: the last delete has no tombstone", key)
		}
	}
	sort.Slice(mismatched, func(i, j int) bool { return mismatched[i] < mismatched[j] })
	for i, key := range mismatched {
		if i == 5 {
			fail("… and %d more keys whose changes in Kafka differ from the committed ones", len(mismatched)-5)
			break
		}
		var got []crashEvent
		if ks := keys[key]; ks != nil {
			got = ks.events
		}
		fail("key %d: Kafka has %v, committed %v", key, got, expected[key])
	}
	parts := make([]string, 0, len(dupsRun))
	for run, n := range dupsRun {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("after kill %d: %d", run, n))
		}
	}
	v.dupsByRun = strings.Join(parts, ", ")
	if v.dupsByRun == "" {
		v.dupsByRun = "none"
	}
	return v, errs
}

func crashVersion(row map[string]any) int32 {
	switch v := row["version"].(type) {
	case int32:
		return v
	case int64:
		return int32(v) //nolint:gosec // the workload's versions are small
	case int:
		return int32(v) //nolint:gosec // as above
	}
	return -1
}

// TestVerifyCrashFindsProblems shows that the crash test's checker fails on
// each kind of loss, reordering or bad repeat it is there to catch.
func TestVerifyCrashFindsProblems(t *testing.T) {
	t.Parallel()
	mk := func(off int64, key int64, op string, commit, change int64, version int32) rec {
		r := rec{Topic: "dps.public.alert", Partition: 0, Offset: off, Key: map[string]any{"id": crashUUID(key)}}
		if op == "" {
			return r // tombstone
		}
		row := map[string]any{"alert": map[string]any{"version": version}}
		r.Value = map[string]any{"op": op, "source": map[string]any{"position": map[string]any{"commit": commit, "change": change}}}
		if op == "d" {
			r.Value["before"] = row
		} else {
			r.Value["after"] = row
		}
		return r
	}
	// Key 1 pre-loaded (snapshot at 100) and updated at 200; key 2 inserted at
	// 200 and deleted at 300. The process is killed after offset 2 with 150
	// confirmed, and its successor republishes the transaction of 200.
	base := func() []rec {
		return []rec{
			mk(0, 1, "r", 100, 0, 1),
			mk(1, 1, "u", 200, 201, 2),
			mk(2, 2, "c", 200, 202, 1),
			mk(3, 1, "u", 200, 201, 2),
			mk(4, 2, "c", 200, 202, 1),
			mk(5, 2, "d", 300, 301, 1),
			mk(6, 2, "", 0, 0, 0),
		}
	}
	expected := map[int64][]crashEvent{1: {{version: 2}}, 2: {{version: 1}, {deleted: true, version: 1}}}
	kills := func(confirmed pglogrepl.LSN) []crashKill {
		return []crashKill{{reason: "test", confirmed: confirmed, ends: map[int32]int64{0: 3}}}
	}
	renumber := func(rs []rec) []rec {
		for i := range rs {
			rs[i].Offset = int64(i)
		}
		return rs
	}

	v, problems := verifyCrash(base(), expected, kills(150), 100, 1)
	require.Empty(t, problems)
	require.Equal(t, 2, v.dupRecords)
	require.Equal(t, 3, v.changes)
	require.Equal(t, 1, v.snapshot)

	for _, tc := range []struct {
		name      string
		recs      func() []rec
		confirmed pglogrepl.LSN
		want      string
	}{
		{"a change lost", func() []rec { r := base(); return renumber(append(r[:2], r[5:]...)) }, 150, "Kafka has [delete@v1], committed [write@v1 delete@v1]"},
		{"a change out of order", func() []rec {
			r := base()
			return renumber(append([]rec{r[0], mk(0, 1, "u", 250, 251, 3)}, r[1:]...))
		}, 150, "out of commit order"},
		{"a repeat that differs", func() []rec { r := base(); r[3] = mk(3, 1, "u", 200, 201, 9); return r }, 150, "different content"},
		{"a repeat of a confirmed change", base, 250, "below the LSN 0/FA confirmed"},
		{"a delete without tombstone", func() []rec { return base()[:6] }, 150, "has no tombstone"},
		{"a tombstone without delete", func() []rec { return append(base(), mk(7, 1, "", 0, 0, 0)) }, 150, "tombstone without a delete"},
		{"a pre-loaded row not snapshotted", func() []rec { return base()[1:] }, 150, "missing from the completed snapshot"},
		{"a change never committed", func() []rec { return append(base(), mk(7, 3, "c", 400, 401, 1)) }, 150, "key 3: Kafka has [write@v1], committed []"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, problems := verifyCrash(tc.recs(), expected, kills(tc.confirmed), 100, 1)
			require.NotEmpty(t, problems)
			require.Contains(t, strings.Join(problems, "\n"), tc.want)
		})
	}
}
