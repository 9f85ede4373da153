package dps

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// benchCommands is the backlog of the apply benchmark.
const benchCommands = 10_000

// benchBatch is apply.batch_commands in the benchmark.
var benchBatch = 500

// BenchmarkApplyDPS: apply dps throughput, commands/s from 10,000 UPSERT
// creates produced to the command topic (kfake, in-process) while the apply
// runs (started and holding its partitions first) to committed rows in DPS (alert, audit event, mapping, outcome, offset),
// beside a reference in the same run that writes the same rows (alert,
// audit event, mapping) with plain multi-row INSERTs of 500 rows per
// transaction (ref=apply.dps.plain_insert).
func BenchmarkApplyDPS(b *testing.B) {
	for _, arm := range []string{"apply", "plain_insert"} {
		b.Run(arm, func(b *testing.B) {
			var took time.Duration
			for range b.N {
				h := newHarness(b)
				h.cfg.Apply.BatchCommands = benchBatch
				cmds := make([]rules.Command, 0, benchCommands)
				for i := range benchCommands {
					cmds = append(cmds, h.cmd(rules.KindUpsert, "B"+strconv.Itoa(1000+i%2000)+"CD", int64(1+i%2000), int32(1+i/2000), nil,
						nomisState("XA", march1, "Risk to staff: see the case notes "+strconv.Itoa(i))))
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
				// Started and holding its partitions before the backlog
				// arrives: the figure is throughput, not start-up.
				r := runtest.Start(b, a.Run)
				for pgtest.QueryValue[int](b, h.db, "SELECT count(*)::int FROM alertsync.consumer_offsets") < h.cfg.Pipeline.Topics.Partitions {
					select {
					case <-r.Done():
						b.Fatalf("apply stopped: %v", r.Err())
					case <-time.After(5 * time.Millisecond):
					}
				}
				began := time.Now()
				if err := h.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					b.Fatal(err)
				}
				for pgtest.QueryValue[int64](b, h.db, "SELECT coalesce(sum(next_offset), 0)::bigint FROM alertsync.consumer_offsets") < benchCommands {
					select {
					case <-r.Done():
						b.Fatalf("apply stopped: %v", r.Err())
					case <-time.After(5 * time.Millisecond):
					}
				}
				took += time.Since(began)
				if err := r.Halt(b); err != nil {
					b.Fatal(err)
				}
				if n := pgtest.QueryValue[int](b, h.db, "SELECT count(*)::int FROM audit_event"); n != benchCommands {
					b.Fatalf("%d audit events for %d commands", n, benchCommands)
				}
			}
			b.ReportMetric(float64(b.N*benchCommands)/took.Seconds(), "commands/s")
		})
	}
}

// plainInsert writes the rows an apply writes for cmds (creates) with
// multi-row INSERTs, 500 commands per transaction.
func plainInsert(b *testing.B, h *harness, cmds []rules.Command) {
	b.Helper()
	ctx := context.Background()
	codeID := pgtest.QueryValue[int64](b, h.db, "SELECT id FROM alert_code WHERE code = 'XA'")
	for start := 0; start < len(cmds); start += 500 {
		part := cmds[start:min(len(cmds), start+500)]
		ids, audits, numbers, descs, books, seqs := make([]string, len(part)), make([]string, len(part)), make([]string, len(part)),
			make([]string, len(part)), make([]int64, len(part)), make([]int32, len(part))
		for i := range part {
			ids[i], audits[i] = uuid.Must(uuid.NewV7()).String(), uuid.Must(uuid.NewV7()).String()
			numbers[i], descs[i], books[i], seqs[i] = part[i].PrisonNumber, *part[i].After.Description, *part[i].NOMISBookingID, *part[i].NOMISAlertSeq
		}
		err := pgx.BeginFunc(ctx, h.db.Pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, version)
				SELECT i::uuid, $2, n, d, DATE '2024-03-01', TIMESTAMP '2024-03-01 10:30:00', 0 FROM unnest($1::text[], $3::text[], $4::text[]) AS u(i, n, d)`,
				ids, codeID, numbers, descs); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
				SELECT a::uuid, i::uuid, 'CREATED', 'Alert created in NOMIS', now(), 'JSMITH', 'JSMITH', 'NOMIS' FROM unnest($1::text[], $2::text[]) AS u(a, i)`,
				audits, ids); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
				SELECT i::uuid, b, s, n, 'NOMIS_CREATED' FROM unnest($1::text[], $2::bigint[], $3::int[], $4::text[]) AS u(i, b, s, n)`,
				ids, books, seqs, numbers)
			return err
		})
		if err != nil {
			b.Fatal(fmt.Errorf("plain insert: %w", err))
		}
	}
}
