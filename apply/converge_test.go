package apply_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/alertsync/alertsync/apply"
	applydps "github.com/alertsync/alertsync/apply/dps"
	applynomis "github.com/alertsync/alertsync/apply/nomis"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/internal/pipeline"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/internal/testenv/runtest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(kafkatest.Wrap(m))) }

// TestBothSidesConverge: a DPS user and a NOMIS user edit the same synced
// alert before either change has synced. Each side's change reaches the
// other side's apply as a command whose before-image no longer matches;
// each apply compares the same two commit times (each read from the clock
// its side's capture uses) and both stores end with the later edit, with a
// CONFLICT outcome for the earlier one. Run both ways: the NOMIS edit later,
// then the DPS edit later.
func TestBothSidesConverge(t *testing.T) {
	t.Parallel()
	for _, nomisLater := range []bool{true, false} {
		name := "DPS edit later"
		if nomisLater {
			name = "NOMIS edit later"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			converge(t, nomisLater)
		})
	}
}

func converge(t *testing.T, nomisLater bool) {
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	_, srcl := srtest.New(t)

	dps := pgtest.NewDB(t)
	dps.Exec(t, deploy.DPSSchemaSQL())
	dps.Exec(t, deploy.DPSSeedSQL())
	nomis := pgtest.NewDB(t)
	nomis.Exec(t, deploy.NOMISSchemaSQL())
	nomis.Exec(t, deploy.NOMISSeedSQL())
	for _, x := range []struct {
		db  *pgtest.DB
		set string
	}{{dps, "dps"}, {nomis, "nomis"}} {
		set, err := migrate.Named(x.set)
		require.NoError(t, err)
		_, err = migrate.Up(ctx, x.db.SQL(t), set, migrate.Latest)
		require.NoError(t, err)
	}
	nomis.Exec(t, `
INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id) VALUES (1, 'A1234BC', 1);
INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, root_offender_id, booking_seq, active_flag, agy_loc_id)
VALUES (10, TIMESTAMP '2024-03-01 10:00:00', 1, 1, 1, 'Y', 'MDI');`)

	// The alert, synced: in both stores, mapped on both sides.
	const id = "0190a3c4-1b2c-7d8e-9f00-0000000000c1"
	dps.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, version)
		SELECT $1::uuid, id, 'A1234BC', 'synced', DATE '2024-03-01', TIMESTAMP '2024-03-01 10:30:00', 1 FROM alert_code WHERE code = 'XA'`, id)
	dps.Exec(t, `INSERT INTO alertsync.alert_mapping (dps_alert_id, nomis_booking_id, nomis_alert_seq, offender_no, mapping_type)
		VALUES ($1::uuid, 10, 1, 'A1234BC', 'DPS_CREATED')`, id)
	nomis.Exec(t, `INSERT INTO oms_owner.offender_alerts (offender_book_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text,
			caseload_id, create_user_id, create_datetime)
		VALUES (10, 1, 'X', 'XA', 'ACTIVE', TIMESTAMP '2024-03-01 00:00:00', 'synced', 'MDI', 'DPSUSER1', TIMESTAMP '2024-03-01 10:30:00')`)
	nomis.Exec(t, `INSERT INTO alertsync.alertsync_alert_mapping (dps_alert_id, offender_book_id, alert_seq, offender_no, mapping_type)
		VALUES ($1::uuid, 10, 1, 'A1234BC', 'DPS_CREATED')`, id)

	// The two edits, in the order that makes the wanted one later.
	editDPS := func() time.Time {
		dps.Exec(t, "UPDATE alert SET description = 'edited in DPS', version = version + 1")
		return pgtest.QueryValue[time.Time](t, dps, "SELECT pg_xact_commit_timestamp(xmin) FROM alert").UTC()
	}
	editNOMIS := func() time.Time {
		nomis.Exec(t, "UPDATE oms_owner.offender_alerts SET comment_text = 'edited in NOMIS'")
		return pgtest.QueryValue[time.Time](t, nomis, "SELECT pg_xact_commit_timestamp(xmin) FROM oms_owner.offender_alerts").UTC()
	}
	var dpsAt, nomisAt time.Time
	if nomisLater {
		dpsAt = editDPS()
		nomisAt = editNOMIS()
	} else {
		nomisAt = editNOMIS()
		dpsAt = editDPS()
	}

	// The commands the transformer makes of the two edits (their commit
	// times as each capture reads them).
	march1 := rules.DateOf(2024, time.March, 1)
	state := func(desc string) *rules.AlertState {
		mdi := "MDI"
		return &rules.AlertState{Code: "XA", TypeCode: "X", ActiveFrom: march1, Status: rules.StatusActive, Description: &desc,
			CreatedBy: "DPSUSER1", CreatedAt: time.Date(2024, 3, 1, 10, 30, 0, 0, time.UTC), PrisonCode: &mdi}
	}
	book, seq := int64(10), int32(1)
	fromNOMIS := rules.Command{Kind: rules.KindUpsert, PrisonNumber: "A1234BC", Origin: rules.SideNOMIS, Target: rules.SideDPS,
		SourcePosition: rules.Position{Commit: nomisAt.UnixMicro(), Change: 1}, SourceCommitTime: nomisAt,
		NOMISBookingID: &book, NOMISAlertSeq: &seq, DPSAlertID: ptr(id), Before: state("synced"), After: state("edited in NOMIS")}
	fromNOMIS.ID = rules.CommandID(rules.SideNOMIS, fromNOMIS.SourcePosition, rules.KindUpsert, "10/1")
	fromDPS := rules.Command{Kind: rules.KindUpsert, PrisonNumber: "A1234BC", Origin: rules.SideDPS, Target: rules.SideNOMIS,
		SourcePosition: rules.Position{Commit: 100, Change: 90}, SourceCommitTime: dpsAt,
		DPSAlertID: ptr(id), Before: state("synced"), After: state("edited in DPS")}
	fromDPS.ID = rules.CommandID(rules.SideDPS, fromDPS.SourcePosition, rules.KindUpsert, id)

	var pc pipeline.Config
	require.NoError(t, config.Load(&pc, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	pc.Kafka.Brokers = brokers
	pc.Topics.Prefix = kafkatest.Topic(t, "c") + "."
	pc.Topics.Partitions, pc.Topics.ReplicationFactor = 3, 1
	require.NoError(t, kafka.EnsureTopics(ctx, kadm.NewClient(kafkatest.Client(t, brokers)),
		pc.Topics.Specs(kafka.CommandsDPS, kafka.CommandsNOMIS, kafka.Outcomes, kafka.DLQ)...))
	codec := schemas.New(srcl, schemas.WithTopicPrefix(pc.Topics.Prefix))
	prod := kafkatest.Client(t, brokers)
	for topic, c := range map[string]*rules.Command{schemas.TopicCommandsDPS: &fromNOMIS, schemas.TopicCommandsNOMIS: &fromDPS} {
		tc, err := codec.Bind(ctx, topic)
		require.NoError(t, err)
		k, v := encode.Native(c)
		rec, err := tc.Record(k, v)
		require.NoError(t, err)
		require.NoError(t, prod.ProduceSync(ctx, rec).FirstErr())
	}

	// Both applies.
	var dcfg applydps.Config
	require.NoError(t, config.Load(&dcfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	dcfg.Pipeline, dcfg.DPS.DSN, dcfg.Apply.Owner = pc, dps.DSN, "converge-dps"
	da, err := applydps.New(dcfg, applydps.Deps{Registry: srcl})
	require.NoError(t, err)
	runtest.Start(t, da.Run)
	var ncfg applynomis.Config
	require.NoError(t, config.Load(&ncfg, config.Sources{LookupEnv: func(string) (string, bool) { return "", false }}))
	ncfg.Pipeline, ncfg.NOMIS.DSN, ncfg.DPS.DSN, ncfg.Apply.Owner, ncfg.Own.Sweep = pc, nomis.DSN, dps.DSN, "converge-nomis", false
	na, err := applynomis.New(ncfg, applynomis.Deps{Registry: srcl})
	require.NoError(t, err)
	runtest.Start(t, na.Run)

	rd := topictest.Reader{Brokers: brokers, Registry: srcl, ReadCommitted: true}
	outs := rd.UntilDistinct(t, 2, 30*time.Second, func(r topictest.Record) string { return r.Headers[apply.HeaderOutboxID] },
		pc.Topics.Prefix+schemas.TopicOutcomes)
	require.Len(t, outs, 2)
	results := map[string]string{}
	for _, o := range outs {
		results[o.Value["command_id"].(string)] = o.Value["outcome"].(string)
	}
	winner := "edited in DPS"
	if nomisLater {
		winner = "edited in NOMIS"
		require.Equal(t, map[string]string{fromNOMIS.ID: "APPLIED", fromDPS.ID: "CONFLICT"}, results)
	} else {
		require.Equal(t, map[string]string{fromNOMIS.ID: "CONFLICT", fromDPS.ID: "APPLIED"}, results)
	}
	require.Equal(t, winner, pgtest.QueryValue[string](t, dps, "SELECT description FROM alert"), "DPS holds the later edit")
	require.Equal(t, winner, pgtest.QueryValue[string](t, nomis, "SELECT comment_text FROM oms_owner.offender_alerts"), "NOMIS holds the later edit")
	require.Equal(t, 1, pgtest.QueryValue[int](t, nomis, "SELECT count(*)::int FROM oms_owner.offender_alerts"), "no second NOMIS alert")
}

func ptr[T any](v T) *T { return &v }
