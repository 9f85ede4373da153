package nomis

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// Benchmark workload.
const (
	benchCommands  = 5_000
	benchPrisoners = 500
)

// BenchmarkApplyNOMIS: apply nomis throughput, commands/s from 5,000 UPSERT
// creates of DPS alerts produced to the command topic (kfake, in-process)
// while the apply runs (started and holding its partitions first) to
// committed rows in the NOMIS stand-in (OFFENDER_ALERTS row, mapping,
// outcome, offset), beside a reference in the same run that writes the
// same rows (alert row and mapping) with plain multi-row INSERTs of 500
// rows per transaction (ref=apply.nomis.plain_insert).
func BenchmarkApplyNOMIS(b *testing.B) {
	for _, arm := range []string{"apply", "plain_insert"} {
		b.Run(arm, func(b *testing.B) {
			var took time.Duration
			for range b.N {
				h := newHarness(b)
				h.cfg.Own.Sweep = false
				h.db.Exec(b, fmt.Sprintf(`
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id)
SELECT 1000 + i, 'E' || lpad(i::text, 4, '0') || 'FG', 1000 + i FROM generate_series(1, %[1]d) i;
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
SELECT 1000 + i, TIMESTAMP '2024-03-01 10:00:00', 1000 + i, 1000 + i, 1, 'Y', 'MDI' FROM generate_series(1, %[1]d) i;`, benchPrisoners))
				cmds := make([]rules.Command, 0, benchCommands)
				for i := range benchCommands {
					id := fmt.Sprintf("0190a3c4-1b2c-7d8e-9f00-%012d", i)
					cmds = append(cmds, h.cmd(rules.KindUpsert, fmt.Sprintf("E%04dFG", 1+i%benchPrisoners), id, nil,
						dpsState("XA", march1, "Risk to staff: see the case notes "+strconv.Itoa(i))))
				}
				if arm == "plain_insert" {
					began := time.Now()
					plainInsert(b, h, cmds)
					took += time.Since(began)
					continue
				}
				recs := make([]*kgo.Record, 0, len(cmds))
				for i := range cmds {
					k, v := encode.Native(&cmds[i])
					rec, err := h.cmds.Record(k, v)
					if err != nil {
						b.Fatal(err)
					}
					recs = append(recs, rec)
				}
				a, err := New(h.cfg, Deps{Registry: h.srcl})
				if err != nil {
					b.Fatal(err)
				}
				r := runtest.Start(b, a.Run)
				wait := func(done func() bool) {
					for !done() {
						select {
						case <-r.Done():
							b.Fatalf("apply stopped: %v", r.Err())
						case <-time.After(5 * time.Millisecond):
						}
					}
				}
				wait(func() bool {
					return pgtest.QueryValue[int](b, h.db, "SELECT count(*)::int FROM alertsync.alertsync_consumer_offsets") >= h.cfg.Pipeline.Topics.Partitions
				})
				began := time.Now()
				if err := h.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				wait(func() bool {
					return pgtest.QueryValue[int64](b, h.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.alertsync_consumer_offsets") >= benchCommands
				})
				took += time.Since(began)
				if err := r.Halt(b); err != nil {
					b.Fatal(err)
				}
				if n := pgtest.QueryValue[int](b, h.db, "SELECT count(*)::int FROM oms_owner.offender_alerts WHERE offender_book_id > 1000"); n != benchCommands {
					b.Fatalf("%d NOMIS alerts for %d commands", n, benchCommands)
				}
			}
			b.ReportMetric(float64(b.N*benchCommands)/took.Seconds(), "commands/s")
		})
	}
}

// plainInsert writes the rows apply nomis writes for cmds (creates on each
// prisoner's booking, sequences in order) with multi-row INSERTs, 500 per
// transaction, as the sync (module DPS_SYNCHRONISATION).
func plainInsert(b *testing.B, h *harness, cmds []rules.Command) {
	b.Helper()
	ctx := context.Background()
	next := map[int64]int32{}
	for start := 0; start < len(cmds); start += 500 {
		part := cmds[start:min(len(cmds), start+500)]
		ids, numbers, descs := make([]string, len(part)), make([]string, len(part)), make([]string, len(part))
		books, seqs := make([]int64, len(part)), make([]int32, len(part))
		for i := range part {
			var n int
			if _, err := fmt.Sscanf(part[i].PrisonNumber, "E%04dFG", &n); err != nil {
				b.Fatal(err)
			}
			book := int64(1000 + n)
			next[book]++
			ids[i], numbers[i], descs[i], books[i], seqs[i] = *part[i].DPSAlertID, part[i].PrisonNumber, *part[i].After.Description, book, next[book]
		}
		err := pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT set_config('nomis.audit_module_name', 'DPS_SYNCHRONISATION', true)"); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date,
					comment_text, caseload_id, create_user_id, create_datetime)
				SELECT b, s, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', d, 'MDI', 'DPSUSER1', TIMESTAMP '2024-03-01 10:30:00'
				  FROM unnest($1::bigint[], $2::int[], $3::text[]) AS u(b, s, d)`, books, seqs, descs); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
				SELECT i::uuid, b, s, n, 'DPS_CREATED' FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[]) AS u(i, b, s, n)`,
				ids, books, seqs, numbers)
			return err
		})
		if err != nil {
			b.Fatal(fmt.Errorf("plain insert: %w", err))
		}
	}
}
