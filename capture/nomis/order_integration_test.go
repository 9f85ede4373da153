package nomis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"
)

// TestConcurrentWritersCommitOrder: 16 writers update overlapping alerts in
// transactions that take their transaction id early, hold their row locks
// open with sleeps and commit late, so that journal order (journal ids,
// allocated when the trigger fires) and commit order differ across alerts.
// Per alert, the records in Kafka must be exactly the committed updates in
// commit order (pg_xact_commit_timestamp of each writer's transaction):
// nothing skipped, nothing repeated, nothing reordered; every record's
// position is its transaction's commit; and positions never go back within a
// partition.
func TestConcurrentWritersCommitOrder(t *testing.T) {
	t.Parallel()
	const (
		writers   = 16
		txPerW    = 30
		alerts    = 12 // on booking 10, seq 1..alerts
		insertsOn = 20 // booking of the alerts writers insert
	)
	h := newHarness(t)
	h.fixture(t)
	for seq := 1; seq <= alerts; seq++ {
		h.db.Exec(t, insertAlert(10, seq))
	}
	r := h.start(t)
	r.waitRunning(t)

	type write struct {
		txid  int64
		key   string // book/seq
		value string // comment_text written
	}
	var (
		mu     sync.Mutex
		writes []write
	)
	g, ctx := errgroup.WithContext(context.Background())
	for w := range writers {
		g.Go(func() error {
			rng := rand.New(rand.NewPCG(uint64(w), 42)) //nolint:gosec // test workload
			for n := range txPerW {
				tx, err := h.db.Pool.Begin(ctx)
				if err != nil {
					return err
				}
				var txid int64
				if err := tx.QueryRow(ctx, "SELECT txid_current()").Scan(&txid); err != nil {
					return err
				}
				if rng.IntN(3) == 0 { // start early
					time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
				}
				picked := rng.Perm(alerts)[:1+rng.IntN(3)]
				sort.Ints(picked) // one lock order: no deadlocks
				var mine []write
				for _, i := range picked {
					v := fmt.Sprintf("w%02d-t%02d", w, n)
					if _, err := tx.Exec(ctx, "UPDATE oms_owner.offender_alerts SET comment_text = $1 WHERE offender_book_id = 10 AND alert_seq = $2", v, i+1); err != nil {
						return err
					}
					mine = append(mine, write{txid, fmt.Sprintf("10/%d", i+1), v})
				}
				if rng.IntN(4) == 0 { // an alert of its own, in the same transaction
					seq := 1000 + w*100 + n
					if _, err := tx.Exec(ctx, insertAlert(insertsOn, seq)); err != nil {
						return err
					}
					mine = append(mine, write{txid, fmt.Sprintf("%d/%d", insertsOn, seq), "text"})
				}
				if rng.IntN(4) == 0 { // commit late, holding the row locks
					time.Sleep(time.Duration(10+rng.IntN(40)) * time.Millisecond)
				}
				if err := tx.Commit(ctx); err != nil {
					return err
				}
				mu.Lock()
				writes = append(writes, mine...)
				mu.Unlock()
			}
			return nil
		})
	}
	require.NoError(t, g.Wait())
	h.waitCaughtUp(t, 60*time.Second)

	// Commit time of every writer transaction, as the journal reader sees it.
	txids := make([]int64, 0, len(writes))
	for _, w := range writes {
		txids = append(txids, w.txid)
	}
	commits := map[int64]int64{}
	rows, err := h.db.Pool.Query(context.Background(), `SELECT x, (extract(epoch FROM pg_xact_commit_timestamp((x % 4294967296)::text::xid)) * 1000000)::bigint
		FROM unnest($1::bigint[]) AS x`, txids)
	require.NoError(t, err)
	for rows.Next() {
		var x, c int64
		require.NoError(t, rows.Scan(&x, &c))
		commits[x] = c
	}
	require.NoError(t, rows.Err())

	want := map[string][]write{}
	for _, w := range writes {
		want[w.key] = append(want[w.key], w)
	}
	for key, ws := range want {
		slices.SortFunc(ws, func(a, b write) int { return int(commits[a.txid] - commits[b.txid]) })
		for i := 1; i < len(ws); i++ {
			require.Less(t, commits[ws[i-1].txid], commits[ws[i].txid], "alert %s: two commits at one microsecond", key)
		}
	}

	recs := h.consumeAll(t, h.topic(TableOffenderAlerts))
	got := byKey(recs)
	updates := 0
	for key, ws := range want {
		var values []string
		var txs []int64
		for _, x := range got[key] {
			if key[:2] == "10" && x.op() == "c" {
				continue // the alerts inserted before the writers started
			}
			values = append(values, x.field("after", "comment_text").(string))
			txid, err := strconv.ParseInt(unwrapUnion(x.source()["txId"]).(string), 10, 64)
			require.NoError(t, err)
			txs = append(txs, txid)
			commit, _ := x.position()
			require.Equal(t, commits[txid], commit, "alert %s: position.commit is the commit of transaction %d", key, txid)
		}
		wantValues := make([]string, len(ws))
		wantTxs := make([]int64, len(ws))
		for i, w := range ws {
			wantValues[i], wantTxs[i] = w.value, w.txid
		}
		require.Equal(t, wantTxs, txs, "alert %s: Kafka order is commit order", key)
		require.Equal(t, wantValues, values, "alert %s", key)
		updates += len(ws)
	}
	t.Logf("%d writers, %d transactions, %d alert changes in commit order", writers, writers*txPerW, updates)

	// Within a partition, positions never go back: batches follow one
	// another in commit order.
	last := map[int32][2]int64{}
	for _, x := range recs {
		if x.Value == nil {
			continue
		}
		c, ch := x.position()
		p := last[x.Partition]
		require.True(t, c > p[0] || (c == p[0] && ch > p[1]), "partition %d: position (%d, %d) after (%d, %d)", x.Partition, c, ch, p[0], p[1])
		last[x.Partition] = [2]int64{c, ch}
	}
}
