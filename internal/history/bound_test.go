package history

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// TestReadKeepsWhatMayBeSelected: Read keeps an Event only for a record
// that may be selected, so that its memory grows with the history asked
// for, not with the topics. Many prisoners each have a command to DPS
// (naming the NOMIS key) and its outcome (naming both keys); prisoner
// A1234BC has the same and the DPS change of its alert; one record names
// nobody. Asked by prisoner, by DPS id or by NOMIS key, Read reads every
// record and keeps the four of A1234BC's alert and the one naming nobody –
// the command among them although it names only the NOMIS key, its DPS id
// being learnt from the outcome (the first of the two passes of an alert).
func TestReadKeepsWhatMayBeSelected(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	reg, srcl := srtest.New(t)
	prefix := kafkatest.Topic(t, "bound") + "."
	cl := kafkatest.Client(t, brokers, kgo.ProducerLinger(0))
	topics := kafka.TopicsConfig{Prefix: prefix, Partitions: 3, ReplicationFactor: 1}
	require.NoError(t, kafka.EnsureTopics(ctx, kadm.NewClient(cl), topics.Specs(append(EventTopics(), refTopics()...)...)...))
	codec := schemas.New(srcl, schemas.WithTopicPrefix(prefix))
	bind := func(topic string) *schemas.TopicCodec {
		tc, err := codec.Bind(ctx, topic)
		require.NoError(t, err)
		return tc
	}
	commands, outcomes, changes := bind(schemas.TopicCommandsDPS), bind(schemas.TopicOutcomes), bind(schemas.TopicDPSAlert)

	t0 := time.Date(2024, 6, 10, 9, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	add := func(tc *schemas.TopicCodec, k, v map[string]any) {
		r, err := tc.Record(k, v)
		require.NoError(t, err)
		r.Timestamp = t0
		recs = append(recs, r)
	}
	history := func(prisoner string, book int64, dpsID string) {
		seq := int32(1)
		c := rules.Command{Kind: rules.KindUpsert, PrisonNumber: prisoner, Origin: rules.SideNOMIS, Target: rules.SideDPS,
			SourcePosition: rules.Position{Commit: book, Change: book}, SourceCommitTime: t0, NOMISBookingID: &book, NOMISAlertSeq: &seq,
			After: &rules.AlertState{Code: "XA", TypeCode: "X", ActiveFrom: rules.DateOf(2024, 6, 10), Status: rules.StatusActive, CreatedBy: "JSMITH", CreatedAt: t0}}
		c.ID = rules.CommandID(c.Origin, c.SourcePosition, c.Kind, fmt.Sprintf(":%d:1", book))
		k, v := encode.Native(&c)
		add(commands, k, v)
		add(outcomes, map[string]any{"prison_number": prisoner}, map[string]any{
			"command_id": c.ID, "target": "DPS", "outcome": "APPLIED", "reason": nil, "prison_number": prisoner,
			"dps_alert_id": schemas.Union(schemas.BranchUUID, dpsID), "nomis_booking_id": schemas.OptLong(&book), "nomis_alert_seq": schemas.OptInt(&seq),
			"source_position": map[string]any{"commit": book, "change": book}, "source_commit_time": t0, "applied_at": t0,
		})
	}
	const others = 150
	for i := range others {
		history(fmt.Sprintf("B%04dXX", i), int64(1000+i), fmt.Sprintf("0190bbbb-0000-7000-8000-%012d", i))
	}
	const dpsID = "0190aaaa-0000-7000-8000-000000000001"
	history("A1234BC", 1, dpsID)
	add(changes, map[string]any{"id": dpsID}, map[string]any{
		"before": nil, "op": "c", "ts_ms": t0.UnixMilli(),
		"after": schemas.OptRecord("alertsync.dps.public.alert.Value", map[string]any{
			"id": dpsID, "alert_code_id": int64(7), "prison_number": "A1234BC", "description": nil, "authorised_by": nil,
			"active_from": int32(rules.DateOf(2024, 6, 10)), "active_to": nil, "created_at": t0, "last_modified_at": nil,
			"deleted_at": nil, "prison_code_when_created": nil, "version": int32(1),
		}),
		"source": map[string]any{
			"version": "test", "connector": "postgresql", "name": "dps", "ts_ms": t0.UnixMilli(), "snapshot": "false", "db": "db",
			"schema": "public", "table": "alert", "txId": nil, "position": map[string]any{"commit": int64(5), "change": int64(5)},
			"lsn": nil, "origin": nil, "sync": true,
		},
	})
	recs = append(recs, &kgo.Record{Topic: prefix + schemas.TopicDPSAlert, Key: []byte("?"), Value: []byte("??"), Timestamp: t0})
	require.NoError(t, cl.ProduceSync(ctx, recs...).FirstErr())

	var cfg Config
	require.NoError(t, config.Load(&cfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }, Flags: map[string]string{
		"kafka.brokers": strings.Join(brokers, ","), "registry.url": reg.URL(), "topics.prefix": prefix, "history.timeout": "60s",
	}}))
	require.NoError(t, config.Validate(&cfg))
	for _, sel := range []Selector{{PrisonNumber: "A1234BC"}, {DPSAlertID: dpsID}, {NOMIS: true, NOMISBookingID: 1, NOMISAlertSeq: 1}} {
		t.Run(sel.String(), func(t *testing.T) {
			t.Parallel()
			tl, err := Read(ctx, cfg, Deps{Registry: srcl}, sel, time.Time{}, io.Discard)
			require.NoError(t, err)
			require.Equal(t, len(recs), tl.Records, "every record is read")
			kinds := map[Kind]int{}
			for _, e := range tl.Events {
				kinds[e.Kind]++
			}
			require.Equal(t, map[Kind]int{KindCommandDPS: 1, KindOutcome: 1, KindDPSChange: 1, KindUndecodable: 1}, kinds, "events kept")
			s := tl.Select(sel, Window{})
			require.Equal(t, 3, s.Matched)
			require.Equal(t, [][]string{{"nomis 1:1", "dps " + dpsID}}, s.Alerts)
			for _, e := range s.Events {
				if e.Kind == KindCommandDPS {
					require.Len(t, e.Outcomes, 1, "the command lists its outcome")
				}
			}
		})
	}
}
