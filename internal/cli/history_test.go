package cli

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr/srfake"

	applydlq "github.com/alertsync/alertsync/apply/dlq"
	"github.com/alertsync/alertsync/internal/history"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/srtest"
	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform"
	"github.com/alertsync/alertsync/transform/encode"
	"github.com/alertsync/alertsync/transform/rules"
)

// The personal text put into the records of the history tests: comments,
// descriptions, authorised-by, a DLQ entry's error, the bytes of records
// that cannot be decoded, and user names (NOMIS create_user_id and session
// user, a command's created_by, a DPS record's alertsync-actioned-by
// header). None of it may appear on stdout, on stderr (logs included) or
// in the error.
const (
	personalComment     = "SECRET-COMMENT-XYZZY"
	personalComment2    = "SECRET-COMMENT-TWO"
	personalDescription = "SECRET-DESC-FROBOZZ"
	personalAuthorised  = "SECRET-AUTH-PLUGH"
	personalError       = "SECRET-ERROR-QUUX"
	personalBytes       = "SECRET-BYTES-GRUE"
	personalUser        = "JSMITH"
	personalActor       = "JBLOGGS"
)

// historyWorld is a kfake cluster and a fake registry holding the topics of
// a pipeline under a prefix of the test's own, and the records written.
type historyWorld struct {
	brokers []string
	regURL  string
	prefix  string
	cl      *kgo.Client
	codecs  map[string]*schemas.TopicCodec
	// records by a test name, once produced (partition and offset set).
	recs map[string]*kgo.Record
}

func newHistoryWorld(t *testing.T) *historyWorld {
	t.Helper()
	ctx := context.Background()
	brokers := kafkatest.Brokers(t)
	reg, srcl := srtest.New(t)
	var err error
	w := &historyWorld{brokers: brokers, regURL: reg.URL(), prefix: kafkatest.Topic(t, "h") + ".",
		cl: kafkatest.Client(t, brokers, kgo.ProducerLinger(0)), codecs: map[string]*schemas.TopicCodec{}, recs: map[string]*kgo.Record{}}
	topics := kafka.TopicsConfig{Prefix: w.prefix, Partitions: 3, ReplicationFactor: 1}
	require.NoError(t, kafka.EnsureTopics(ctx, kadm.NewClient(w.cl), topics.Specs(append(history.EventTopics(), kafka.DPSAlertCode, kafka.DPSAlertType)...)...))
	codec := schemas.New(srcl, schemas.WithTopicPrefix(w.prefix))
	for _, tp := range []string{schemas.TopicNOMISOffenderAlerts, schemas.TopicNOMISPrisonerAlerts, schemas.TopicDPSAlert,
		schemas.TopicDPSAlertCode, schemas.TopicDPSAlertType, schemas.TopicCommandsDPS, schemas.TopicCommandsNOMIS,
		schemas.TopicOutcomes, schemas.TopicDLQ} {
		w.codecs[tp], err = codec.Bind(ctx, tp)
		require.NoError(t, err)
	}
	return w
}

// record encodes key and value for topic (its base name) with timestamp ts.
func (w *historyWorld) record(t *testing.T, topic string, key, value map[string]any, ts time.Time) *kgo.Record {
	t.Helper()
	r, err := w.codecs[topic].Record(key, value)
	require.NoError(t, err)
	r.Timestamp = ts
	return r
}

// produce writes the named records, one at a time, in order.
func (w *historyWorld) produce(t *testing.T, name string, r *kgo.Record) {
	t.Helper()
	require.NoError(t, w.cl.ProduceSync(context.Background(), r).FirstErr())
	w.recs[name] = r
}

// inTransaction writes the named records in one transaction of a
// transformer-like producer, committed or aborted.
func (w *historyWorld) inTransaction(t *testing.T, commit bool, named map[string]*kgo.Record) {
	t.Helper()
	ctx := context.Background()
	tx := kafkatest.Client(t, w.brokers, kgo.TransactionalID(w.prefix+"transform"), kgo.ProducerLinger(0))
	require.NoError(t, tx.BeginTransaction())
	for name, r := range named {
		require.NoError(t, tx.ProduceSync(ctx, r).FirstErr())
		w.recs[name] = r
	}
	end := kgo.TryAbort
	if commit {
		end = kgo.TryCommit
	}
	require.NoError(t, tx.EndTransaction(ctx, end))
	tx.Close()
}

// ref is the record's place as history prints it.
func (w *historyWorld) ref(name string) string {
	r := w.recs[name]
	return fmt.Sprintf("%s/%d/%d", r.Topic, r.Partition, r.Offset)
}

// history runs `alertsync history` on the world with args.
func (w *historyWorld) history(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	out, errOut, err := run(t, append([]string{"history", "--kafka.brokers=" + strings.Join(w.brokers, ","), "--registry.url=" + w.regURL,
		"--topics.prefix=" + w.prefix, "--log.level=warn", "--history.timeout=60s"}, args...)...)
	for _, s := range []string{personalComment, personalComment2, personalDescription, personalAuthorised, personalError, personalBytes,
		personalUser, personalActor, "SECRET"} {
		require.NotContains(t, out, s, "personal text on stdout")
		require.NotContains(t, errOut, s, "personal text on stderr")
		if err != nil {
			require.NotContains(t, err.Error(), s, "personal text in the error")
		}
	}
	return out, errOut, err
}

// jsonEvents runs history --json and decodes the array.
func (w *historyWorld) jsonEvents(t *testing.T, args ...string) []map[string]any {
	t.Helper()
	out, errOut, err := w.history(t, append([]string{"--json"}, args...)...)
	require.NoError(t, err, errOut)
	var evs []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &evs), "--json prints one JSON array")
	return evs
}

// Record builders, in the captures' and the pipeline's shapes.

func histSource(connector string, commit time.Time, pos int64, sync bool, origin string) map[string]any {
	var o *string
	if origin != "" {
		o = &origin
	}
	return map[string]any{
		"version": "test", "connector": connector, "name": connector, "ts_ms": commit.UnixMilli(), "snapshot": "false",
		"db": "db", "schema": "s", "table": "t", "txId": nil, "position": map[string]any{"commit": pos, "change": pos},
		"lsn": nil, "origin": schemas.OptString(o), "sync": sync,
	}
}

// nomisAlertRow is an OFFENDER_ALERTS row; dates are London midnights.
type nomisAlertRow struct {
	book                  int64
	seq                   int32
	code, typ, status     string
	date                  time.Time
	expiry                *time.Time
	comment, authorisedBy string
}

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

func londonDate(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, london) }

func (r nomisAlertRow) native() map[string]any {
	return map[string]any{
		"alert_date": r.date, "offender_book_id": r.book, "root_offender_id": nil, "alert_seq": r.seq,
		"alert_type": r.typ, "alert_code": r.code, "authorize_person_text": schemas.OptString(&r.authorisedBy),
		"create_date": nil, "alert_status": r.status, "verified_flag": "N", "expiry_date": schemas.OptTimestamp(r.expiry),
		"comment_text": schemas.OptString(&r.comment), "caseload_id": schemas.OptString(ptr("MDI")),
		"modify_user_id": nil, "modify_datetime": nil, "caseload_type": schemas.OptString(ptr("INST")),
		"create_datetime": r.date, "create_user_id": personalUser, "audit_timestamp": nil, "audit_user_id": nil,
		"audit_module_name": nil, "audit_client_user_id": nil, "audit_client_ip_address": nil,
		"audit_client_workstation_name": nil, "audit_additional_info": nil,
	}
}

const nomisRowType = "alertsync.nomis.oms_owner.offender_alerts.Value"

func optNOMISRow(r *nomisAlertRow) any {
	if r == nil {
		return nil
	}
	return schemas.OptRecord(nomisRowType, r.native())
}

// nomisChange is a record of nomis.oms_owner.offender_alerts.
func nomisChange(op string, before, after *nomisAlertRow, commit time.Time, pos int64, module, prisoner, dpsID string) (key, value map[string]any) {
	img := after
	if img == nil {
		img = before
	}
	sync := module == "DPS_SYNCHRONISATION"
	var id any
	if dpsID != "" {
		id = schemas.Union(schemas.BranchUUID, dpsID)
	}
	return map[string]any{"offender_book_id": img.book, "alert_seq": img.seq}, map[string]any{
		"before": optNOMISRow(before), "after": optNOMISRow(after), "source": histSource("oracle", commit, pos, sync, module),
		"op": op, "ts_ms": commit.UnixMilli() + 200,
		"session": schemas.OptRecord(schemas.TypeNOMISSession, map[string]any{
			"module": schemas.OptString(&module), "additional_info": nil, "user": schemas.OptString(ptr(personalUser)),
		}),
		"context": schemas.OptRecord(schemas.TypeNOMISAlertContext, map[string]any{
			"offender_no": schemas.OptString(&prisoner), "booking_seq": schemas.OptInt(ptr(int32(1))), "dps_alert_id": id,
		}),
	}
}

// snapshot is a record of nomis.alertsync.prisoner_alerts.
func snapshot(prisoner, reason string, commit time.Time, pos int64, books []int64, rows []nomisAlertRow, dpsIDs []string) (key, value map[string]any) {
	bs := make([]any, len(books))
	for i, b := range books {
		bs[i] = b
	}
	alerts := make([]any, len(rows))
	for i, r := range rows {
		var id any
		if dpsIDs[i] != "" {
			id = schemas.Union(schemas.BranchUUID, dpsIDs[i])
		}
		alerts[i] = map[string]any{"position": map[string]any{"commit": pos, "change": int64(0)}, "dps_alert_id": id, "row": r.native()}
	}
	src := histSource("oracle", commit, pos, false, "")
	src["snapshot"] = "true"
	return map[string]any{"offender_no": prisoner}, map[string]any{
		"offender_no": prisoner, "reason": reason, "source": src, "ts_ms": commit.UnixMilli(), "booking_ids": bs, "alerts": alerts,
	}
}

type dpsAlertRow struct {
	id, prisoner string
	codeID       int64
	from         rules.Date
	to           *rules.Date
	description  string
	deletedAt    *time.Time
	version      int32
	authorisedBy string
}

const dpsRowType = "alertsync.dps.public.alert.Value"

func optDPSRow(r *dpsAlertRow) any {
	if r == nil {
		return nil
	}
	var to any
	if r.to != nil {
		to = schemas.Union(schemas.BranchDate, int32(*r.to))
	}
	return schemas.OptRecord(dpsRowType, map[string]any{
		"id": r.id, "alert_code_id": r.codeID, "prison_number": r.prisoner, "description": schemas.OptString(&r.description),
		"authorised_by": schemas.OptString(&r.authorisedBy), "active_from": int32(r.from), "active_to": to,
		"created_at": time.Date(2024, 6, 10, 9, 0, 0, 0, time.UTC), "last_modified_at": nil, "deleted_at": schemas.OptTimestamp(r.deletedAt),
		"prison_code_when_created": schemas.OptString(ptr("MDI")), "version": r.version,
	})
}

// dpsChange is a record of dps.public.alert.
func dpsChange(op string, before, after *dpsAlertRow, commit time.Time, pos int64, sync bool) (key, value map[string]any) {
	img := after
	if img == nil {
		img = before
	}
	origin := ""
	if sync {
		origin = "apply-dps"
	}
	return map[string]any{"id": img.id}, map[string]any{
		"before": optDPSRow(before), "after": optDPSRow(after), "source": histSource("postgresql", commit, pos, sync, origin),
		"op": op, "ts_ms": commit.UnixMilli() + 200,
	}
}

// refRow is a record of dps.public.alert_code (typeID set) or alert_type.
func refRow(id, typeID int64, code string) (key, value map[string]any) {
	created := time.Date(2024, 1, 2, 9, 0, 0, 0, time.UTC)
	row := map[string]any{"id": id, "code": code, "description": "Reference " + code, "list_sequence": int32(1),
		"created_at": created, "created_by": "ref", "modified_at": nil, "modified_by": nil, "deactivated_at": nil, "deactivated_by": nil}
	typ := "alertsync.dps.public.alert_type.Value"
	if typeID != 0 {
		row["alert_type_id"], row["restricted"] = typeID, false
		typ = "alertsync.dps.public.alert_code.Value"
	}
	return map[string]any{"id": id}, map[string]any{"before": nil, "after": schemas.OptRecord(typ, row),
		"source": histSource("postgresql", created, 1, false, ""), "op": "r", "ts_ms": created.UnixMilli()}
}

func alertState(code, typ string, from rules.Date, to *rules.Date, desc string) *rules.AlertState {
	return &rules.AlertState{Code: code, TypeCode: typ, ActiveFrom: from, ActiveTo: to, Status: rules.StatusActive,
		Description: &desc, AuthorisedBy: ptr(personalAuthorised), CreatedBy: personalUser, CreatedAt: time.Date(2024, 6, 10, 9, 0, 0, 0, time.UTC)}
}

// newCommand is a command for target, as the transformer writes it.
func newCommand(target, origin rules.Side, kind rules.Kind, prisoner string, pos int64, commit time.Time, dpsID string, book int64, seq int32, before, after *rules.AlertState) rules.Command {
	c := rules.Command{Kind: kind, PrisonNumber: prisoner, Origin: origin, Target: target,
		SourcePosition: rules.Position{Commit: pos, Change: pos}, SourceCommitTime: commit.UTC(), Before: before, After: after}
	if dpsID != "" {
		c.DPSAlertID = &dpsID
	}
	if book != 0 {
		c.NOMISBookingID, c.NOMISAlertSeq = &book, &seq
	}
	c.ID = rules.CommandID(origin, c.SourcePosition, kind, fmt.Sprintf("%s:%d:%d", dpsID, book, seq))
	return c
}

// outcomeOf is an outcome record of c.
func outcomeOf(c rules.Command, result, reason, dpsID string, at time.Time) (key, value map[string]any) {
	var r *string
	if reason != "" {
		r = &reason
	}
	var id any
	if dpsID != "" {
		id = schemas.Union(schemas.BranchUUID, dpsID)
	}
	return map[string]any{"prison_number": c.PrisonNumber}, map[string]any{
		"command_id": c.ID, "target": c.Target.String(), "outcome": result, "reason": schemas.OptString(r),
		"prison_number": c.PrisonNumber, "dps_alert_id": id, "nomis_booking_id": schemas.OptLong(c.NOMISBookingID),
		"nomis_alert_seq": schemas.OptInt(c.NOMISAlertSeq), "source_position": map[string]any{"commit": c.SourcePosition.Commit, "change": c.SourcePosition.Change},
		"source_commit_time": c.SourceCommitTime, "applied_at": at,
	}
}

// histWorld holds the ids of the history the tests write.
type histIDs struct {
	t0               time.Time
	dps1, dps2, dps4 string
	c1, c2, c3       rules.Command // prisoner A's commands to DPS for alert 100:2
	c4, c5           rules.Command // prisoner B's
	aborted          rules.Command
	dps9             string // the DPS alert of the records that cannot be read
}

// writeHistory writes the history of two prisoners:
//
// A1234BC (booking 100): a snapshot with alert 100:1 (DPS dps1); NOMIS
// creates alert 100:2 (comment, authorised by); the transformer sends
// command c1 to DPS; apply dps creates dps2 (APPLIED) and its own change of
// dps2 is captured (sync); NOMIS sets an expiry date and changes the
// comment; an undecodable record keyed by 100:2; command c2, which loses a
// CONFLICT; NOMIS deletes 100:2; command c3, which FAILED, and its DLQ
// entry (whose error quotes the description).
//
// B5678CD (booking 200): NOMIS creates 200:1; command c4 creates dps4; a DPS
// user ends dps4 and changes its description; command c5 to NOMIS is
// APPLIED and its sync write captured in NOMIS.
//
// C1111CC (booking 300): NOMIS creates 300:1 twenty minutes in, in a
// record stamped a minute earlier (the capture's clock behind the
// database's).
//
// DPS alert dps9: a record whose value has the magic byte and schema id of
// its topic but a body of personal text, one that decodes but whose key
// does not match its images (a shape error), and a DLQ entry whose
// original cannot be decoded.
//
// And: a command for A1234BC in an aborted transaction, and an undecodable
// record whose key names nobody.
func writeHistory(t *testing.T, w *historyWorld) histIDs {
	t.Helper()
	t0 := time.Date(2024, 6, 10, 9, 0, 0, 0, time.UTC) // summer: London dates are UTC dates + 1h
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	ids := histIDs{t0: t0, dps1: "0190aaaa-0000-7000-8000-000000000001", dps2: "0190aaaa-0000-7000-8000-000000000002", dps4: "0190bbbb-0000-7000-8000-000000000004"}
	june10, june30 := rules.DateOf(2024, 6, 10), rules.DateOf(2024, 6, 30)

	for name, kv := range map[string][2]map[string]any{"code-ha": pair(refRow(7, 70, "HA")), "code-xa": pair(refRow(8, 80, "XA"))} {
		w.produce(t, name, w.record(t, schemas.TopicDPSAlertCode, kv[0], kv[1], t0.Add(-time.Hour)))
	}
	for name, kv := range map[string][2]map[string]any{"type-h": pair(refRow(70, 0, "H")), "type-x": pair(refRow(80, 0, "X"))} {
		w.produce(t, name, w.record(t, schemas.TopicDPSAlertType, kv[0], kv[1], t0.Add(-time.Hour)))
	}

	a1 := nomisAlertRow{book: 100, seq: 1, code: "XA", typ: "X", status: "ACTIVE", date: londonDate(2024, 5, 1), comment: personalComment, authorisedBy: personalAuthorised}
	a2 := nomisAlertRow{book: 100, seq: 2, code: "HA", typ: "H", status: "ACTIVE", date: londonDate(2024, 6, 10), comment: personalComment, authorisedBy: personalAuthorised}
	a2u := a2
	a2u.expiry, a2u.comment = ptr(londonDate(2024, 6, 30)), personalComment2
	b1 := nomisAlertRow{book: 200, seq: 1, code: "XA", typ: "X", status: "ACTIVE", date: londonDate(2024, 6, 10), comment: personalComment, authorisedBy: personalAuthorised}
	b1u := b1
	b1u.expiry = ptr(londonDate(2024, 6, 30))

	k, v := snapshot("A1234BC", "INITIAL_LOAD", at(0), 900, []int64{100}, []nomisAlertRow{a1}, []string{ids.dps1})
	w.produce(t, "a-snapshot", w.record(t, schemas.TopicNOMISPrisonerAlerts, k, v, at(time.Second)))
	// The transformer could not map a change of 100:1 (its original record,
	// read at offset 42, is not in the topic: it went to the DLQ only).
	k, v = nomisChange("u", &a1, &a1, at(20*time.Second), 950, "OIDALERT", "A1234BC", ids.dps1)
	orig := w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(20*time.Second))
	tdlq := w.record(t, schemas.TopicDLQ, map[string]any{"routing_key": "nomis:100:1"}, map[string]any{
		"topic": orig.Topic, "partition": int32(0), "offset": int64(42), "key": schemas.OptBytes(orig.Key), "value": schemas.OptBytes(orig.Value),
		"headers": []any{}, "stage": rules.StageTransform, "error_kind": "mapping", "attempt": int32(1),
		"error":     "unknown alert code (" + personalError + ")",
		"failed_at": at(30 * time.Second), "held": false, "held_behind": nil, "alert_key": schemas.OptString(ptr("nomis:100:1")),
	}, at(30*time.Second))
	tdlq.Headers = []kgo.RecordHeader{{Key: transform.HeaderReason, Value: []byte("text_too_long")}}
	w.produce(t, "a-transform-dlq", tdlq)
	k, v = nomisChange("c", nil, &a2, at(time.Minute), 1000, "OIDALERT", "A1234BC", "")
	w.produce(t, "a-nomis-create", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(time.Minute+200*time.Millisecond)))
	k, v = nomisChange("c", nil, &b1, at(90*time.Second), 1050, "OIDALERT", "B5678CD", "")
	w.produce(t, "b-nomis-create", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(90*time.Second+200*time.Millisecond)))

	ids.c1 = newCommand(rules.SideDPS, rules.SideNOMIS, rules.KindUpsert, "A1234BC", 1000, at(time.Minute), "", 100, 2, nil, alertState("HA", "H", june10, nil, personalDescription))
	ids.c4 = newCommand(rules.SideDPS, rules.SideNOMIS, rules.KindUpsert, "B5678CD", 1050, at(90*time.Second), "", 200, 1, nil, alertState("XA", "X", june10, nil, personalDescription))
	ck, cv := encode.Native(&ids.c1)
	c1 := w.record(t, schemas.TopicCommandsDPS, ck, cv, at(2*time.Minute))
	ck, cv = encode.Native(&ids.c4)
	c4 := w.record(t, schemas.TopicCommandsDPS, ck, cv, at(150*time.Second))
	w.inTransaction(t, true, map[string]*kgo.Record{"c1": c1, "c4": c4})
	ids.aborted = newCommand(rules.SideDPS, rules.SideNOMIS, rules.KindUpsert, "A1234BC", 999, at(time.Minute), "", 100, 9, nil, alertState("HA", "H", june10, nil, personalDescription))
	ck, cv = encode.Native(&ids.aborted)
	w.inTransaction(t, false, map[string]*kgo.Record{"aborted": w.record(t, schemas.TopicCommandsDPS, ck, cv, at(2*time.Minute))})

	k, v = outcomeOf(ids.c1, "APPLIED", "", ids.dps2, at(3*time.Minute))
	w.produce(t, "c1-outcome", w.record(t, schemas.TopicOutcomes, k, v, at(3*time.Minute)))
	k, v = outcomeOf(ids.c4, "APPLIED", "", ids.dps4, at(195*time.Second))
	w.produce(t, "c4-outcome", w.record(t, schemas.TopicOutcomes, k, v, at(195*time.Second)))
	d2 := dpsAlertRow{id: ids.dps2, prisoner: "A1234BC", codeID: 7, from: june10, description: personalDescription, authorisedBy: personalAuthorised, version: 1}
	k, v = dpsChange("c", nil, &d2, at(210*time.Second), 5000, true)
	w.produce(t, "a-dps-create", w.record(t, schemas.TopicDPSAlert, k, v, at(210*time.Second+200*time.Millisecond)))
	d4 := dpsAlertRow{id: ids.dps4, prisoner: "B5678CD", codeID: 8, from: june10, description: personalDescription, authorisedBy: personalAuthorised, version: 1}
	k, v = dpsChange("c", nil, &d4, at(225*time.Second), 5050, true)
	w.produce(t, "b-dps-create", w.record(t, schemas.TopicDPSAlert, k, v, at(225*time.Second+200*time.Millisecond)))

	k, v = nomisChange("u", &a2, &a2u, at(4*time.Minute), 1100, "OIDALERT", "A1234BC", ids.dps2)
	w.produce(t, "a-nomis-update", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(4*time.Minute+200*time.Millisecond)))
	// A record of 100:2 whose value no registry can decode.
	badKey, err := w.codecs[schemas.TopicNOMISOffenderAlerts].Key.Append(nil, map[string]any{"offender_book_id": int64(100), "alert_seq": int32(2)})
	require.NoError(t, err)
	w.produce(t, "a-undecodable", &kgo.Record{Topic: w.prefix + schemas.TopicNOMISOffenderAlerts, Key: badKey,
		Value: []byte("not avro: " + personalComment), Timestamp: at(270 * time.Second)})

	ids.c2 = newCommand(rules.SideDPS, rules.SideNOMIS, rules.KindUpsert, "A1234BC", 1100, at(4*time.Minute), ids.dps2, 100, 2,
		alertState("HA", "H", june10, nil, personalDescription), alertState("HA", "H", june10, &june30, personalComment2))
	ck, cv = encode.Native(&ids.c2)
	w.inTransaction(t, true, map[string]*kgo.Record{"c2": w.record(t, schemas.TopicCommandsDPS, ck, cv, at(5*time.Minute))})
	k, v = outcomeOf(ids.c2, "CONFLICT", "target_newer", ids.dps2, at(6*time.Minute))
	w.produce(t, "c2-outcome", w.record(t, schemas.TopicOutcomes, k, v, at(6*time.Minute)))

	d4u := d4
	d4u.to, d4u.description, d4u.version = &june30, personalDescription+"-changed", 2
	k, v = dpsChange("u", &d4, &d4u, at(390*time.Second), 5100, false)
	bUpdate := w.record(t, schemas.TopicDPSAlert, k, v, at(390*time.Second+200*time.Millisecond))
	bUpdate.Headers = []kgo.RecordHeader{{Key: schemas.HeaderActionedBy, Value: []byte(personalActor)}}
	w.produce(t, "b-dps-update", bUpdate)

	k, v = nomisChange("d", &a2u, nil, at(7*time.Minute), 1200, "OIDALERT", "A1234BC", ids.dps2)
	w.produce(t, "a-nomis-delete", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(7*time.Minute+200*time.Millisecond)))

	ids.c5 = newCommand(rules.SideNOMIS, rules.SideDPS, rules.KindUpsert, "B5678CD", 5100, at(390*time.Second), ids.dps4, 200, 1,
		alertState("XA", "X", june10, nil, personalDescription), alertState("XA", "X", june10, &june30, personalDescription+"-changed"))
	ck, cv = encode.Native(&ids.c5)
	w.inTransaction(t, true, map[string]*kgo.Record{"c5": w.record(t, schemas.TopicCommandsNOMIS, ck, cv, at(435*time.Second))})
	k, v = outcomeOf(ids.c5, "APPLIED", "", ids.dps4, at(465*time.Second))
	w.produce(t, "c5-outcome", w.record(t, schemas.TopicOutcomes, k, v, at(465*time.Second)))

	ids.c3 = newCommand(rules.SideDPS, rules.SideNOMIS, rules.KindDelete, "A1234BC", 1200, at(7*time.Minute), ids.dps2, 100, 2, alertState("HA", "H", june10, &june30, personalComment2), nil)
	ck, cv = encode.Native(&ids.c3)
	c3 := w.record(t, schemas.TopicCommandsDPS, ck, cv, at(8*time.Minute))
	w.inTransaction(t, true, map[string]*kgo.Record{"c3": c3})

	k, v = nomisChange("u", &b1, &b1u, at(495*time.Second), 1300, "DPS_SYNCHRONISATION", "B5678CD", ids.dps4)
	w.produce(t, "b-nomis-sync", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(495*time.Second+200*time.Millisecond)))

	k, v = outcomeOf(ids.c3, "FAILED", "refused_23514", "", at(9*time.Minute))
	w.produce(t, "c3-outcome", w.record(t, schemas.TopicOutcomes, k, v, at(9*time.Minute)))
	alertKey := "nomis:100:2"
	dlq := w.record(t, schemas.TopicDLQ, map[string]any{"routing_key": alertKey}, map[string]any{
		"topic": c3.Topic, "partition": c3.Partition, "offset": c3.Offset, "key": schemas.OptBytes(c3.Key), "value": schemas.OptBytes(c3.Value),
		"headers": []any{}, "stage": applydlq.StageApplyDPS, "error_kind": "refused", "attempt": int32(1),
		"error":     "new row violates check constraint: Failing row contains (" + personalError + ", " + personalDescription + ")",
		"failed_at": at(9 * time.Minute), "held": false, "held_behind": nil, "alert_key": schemas.OptString(&alertKey),
	}, at(9*time.Minute))
	w.produce(t, "c3-dlq", dlq)

	// A record nobody can read, key included.
	w.produce(t, "nobody", &kgo.Record{Topic: w.prefix + schemas.TopicDPSAlert, Key: []byte("?"), Value: []byte("??"), Timestamp: at(10 * time.Minute)})

	cRow := nomisAlertRow{book: 300, seq: 1, code: "HA", typ: "H", status: "ACTIVE", date: londonDate(2024, 6, 10), comment: personalComment, authorisedBy: personalAuthorised}
	k, v = nomisChange("c", nil, &cRow, at(20*time.Minute), 1400, "OIDALERT", "C1111CC", "")
	w.produce(t, "c-skewed", w.record(t, schemas.TopicNOMISOffenderAlerts, k, v, at(19*time.Minute)))

	ids.dps9 = "0190dddd-0000-7000-8000-000000000009"
	dpsCodec := w.codecs[schemas.TopicDPSAlert]
	key9, err := dpsCodec.Key.Append(nil, map[string]any{"id": ids.dps9})
	require.NoError(t, err)
	// The wire format's header (magic byte 0, the value schema's id), then
	// no Avro body but personal text.
	garbage := binary.BigEndian.AppendUint32([]byte{0}, uint32(dpsCodec.Value.ID()))
	garbage = append(garbage, "\x02\xff"+personalBytes+" "+personalDescription...)
	w.produce(t, "d-malformed", &kgo.Record{Topic: dpsCodec.Topic, Key: key9, Value: garbage, Timestamp: at(11 * time.Minute)})
	d9 := dpsAlertRow{id: "0190dddd-0000-7000-8000-000000000010", prisoner: "D4444DD", codeID: 7, from: june10, description: personalDescription, authorisedBy: personalAuthorised, version: 1}
	k, v = dpsChange("c", nil, &d9, at(11*time.Minute), 5200, false)
	k["id"] = ids.dps9 // the key does not match the image
	w.produce(t, "d-shape", w.record(t, schemas.TopicDPSAlert, k, v, at(11*time.Minute+time.Second)))
	dlq9 := "dps:" + ids.dps9
	w.produce(t, "d-dlq", w.record(t, schemas.TopicDLQ, map[string]any{"routing_key": dlq9}, map[string]any{
		"topic": dpsCodec.Topic, "partition": int32(0), "offset": int64(77), "key": schemas.OptBytes(key9), "value": schemas.OptBytes(garbage),
		"headers": []any{}, "stage": rules.StageTransform, "error_kind": "decode", "attempt": int32(1),
		"error":     "malformed Avro body: " + personalBytes,
		"failed_at": at(12 * time.Minute), "held": false, "held_behind": nil, "alert_key": schemas.OptString(&dlq9),
	}, at(12*time.Minute)))
	return ids
}

func pair(k, v map[string]any) [2]map[string]any { return [2]map[string]any{k, v} }

// TestHistory writes the history of two prisoners (writeHistory) and asks
// for it by prisoner, by DPS alert and by NOMIS alert, in text and JSON,
// whole and within --since/--until; every run checks that no personal text
// reaches stdout, stderr or the error.
func TestHistory(t *testing.T) {
	t.Parallel()
	w := newHistoryWorld(t)
	ids := writeHistory(t, w)

	// Prisoner A's events, in time order: record names, "nobody" being the
	// undecodable record no key attributes.
	aEvents := []string{"a-snapshot", "a-transform-dlq", "a-nomis-create", "c1", "c1-outcome", "a-dps-create", "a-nomis-update", "a-undecodable",
		"c2", "c2-outcome", "a-nomis-delete", "c3", "c3-dlq", "c3-outcome", "nobody"} // c3-dlq and c3-outcome tie: by topic
	alertEvents := aEvents[2:] // alert 100:2 = dps2: not the snapshot, which holds 100:1 only, nor the DLQ entry of 100:1

	t.Run("prisoner text", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := w.history(t, "--prisoner", "a1234bc")
		require.NoError(t, err, errOut)
		t.Logf("alertsync history --prisoner A1234BC\n%s", out)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		require.Regexp(t, `^TIME +EVENT +OP +PRISONER +NOMIS +DPS +COMMAND +SYNC +ORIGIN +POSITION +RECORD +DETAILS$`, lines[0])
		require.Len(t, lines, len(aEvents)+2, "header, one line per event, summary")
		for i, name := range aEvents {
			require.Contains(t, lines[i+1], " "+w.ref(name)+" ", "line %d is %s", i+1, name)
		}
		require.NotContains(t, out, "B5678CD")
		require.NotContains(t, out, ids.dps4)
		require.NotContains(t, out, ids.c4.ID)
		require.NotContains(t, out, ids.aborted.ID, "a command of an aborted transaction")
		find := func(name string) string { return lines[1+indexOf(aEvents, name)] }
		require.Regexp(t, `^2024-06-10T09:01:00\.000Z +NOMIS change +create +A1234BC +100:2 +- +- +user +OIDALERT +1000/1000 `, find("a-nomis-create"))
		require.Contains(t, find("a-nomis-create"), "alert_code=HA alert_type=H alert_date=2024-06-10 alert_status=ACTIVE caseload_id=MDI comment_text set authorize_person_text set")
		require.Regexp(t, `^2024-06-10T09:03:30\.000Z +DPS change +create +A1234BC +- +`+ids.dps2+` +- +sync +apply-dps +5000/5000 `, find("a-dps-create"))
		require.Contains(t, find("a-dps-create"), "alert_code=HA alert_type=H active_from=2024-06-10 prison_number=A1234BC prison_code_when_created=MDI description set authorised_by set")
		require.Contains(t, find("a-nomis-update"), "expiry_date -→2024-06-30 comment_text changed")
		require.NotContains(t, find("a-nomis-update"), "authorize_person_text", "unchanged")
		require.Contains(t, find("a-nomis-delete"), "was alert_code=HA")
		require.Regexp(t, `command→DPS +UPSERT +A1234BC +100:2 +- +`+ids.c1.ID+` +- +from NOMIS +1000/1000 .* outcome APPLIED$`, find("c1"))
		require.Contains(t, find("c1-outcome"), "of command→DPS UPSERT at "+w.ref("c1"))
		require.Regexp(t, `outcome +CONFLICT .*reason=target_newer of command→DPS UPSERT at `+regexp.QuoteMeta(w.ref("c2")), find("c2-outcome"))
		require.Regexp(t, `DLQ +refused +A1234BC +100:2 +`+ids.dps2+` +`+ids.c3.ID+` .*stage=apply-dps alert_key=nomis:100:2 attempt=1 original=`+regexp.QuoteMeta(w.ref("c3"))+` \(command→DPS DELETE\)$`, find("c3-dlq"))
		require.Regexp(t, `undecodable +- +- +100:2 .*value: unknown magic byte`, find("a-undecodable"))
		require.Contains(t, find("nobody"), "its key names no prisoner or alert")
		require.Regexp(t, `DLQ +mapping +A1234BC +100:1 +`+ids.dps1+` +- .*stage=transform reason=text_too_long alert_key=nomis:100:1 attempt=1 original=`, find("a-transform-dlq"))
		require.Contains(t, find("a-snapshot"), "bookings=100 alerts=1 [100:1/"+ids.dps1+" XA ACTIVE from 2024-05-01]")
		summary := lines[len(lines)-1]
		require.Equal(t, "15 events for prisoner A1234BC: 3 NOMIS change, 1 NOMIS snapshot, 1 DPS change, 3 command→DPS, 3 outcome, 2 DLQ, 2 undecodable"+
			" (1 undecodable record naming nobody, shown since it may concern it); 2 alerts seen: nomis 100:1 = dps "+ids.dps1+", nomis 100:2 = dps "+ids.dps2, summary)
	})

	t.Run("prisoner json", func(t *testing.T) {
		t.Parallel()
		evs := w.jsonEvents(t, "--prisoner", "A1234BC")
		require.Len(t, evs, len(aEvents))
		var last time.Time
		for i, e := range evs {
			rec := e["record"].(map[string]any)
			require.Equal(t, w.ref(aEvents[i]), fmt.Sprintf("%s/%.0f/%.0f", rec["topic"], rec["partition"], rec["offset"]), "event %d", i)
			require.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`, e["time"], "RFC 3339, UTC, milliseconds")
			ts, err := time.Parse(time.RFC3339Nano, e["time"].(string))
			require.NoError(t, err)
			require.False(t, ts.Before(last), "time order")
			last = ts
			if e["kind"] != "undecodable" {
				require.Equal(t, "A1234BC", e["prison_number"], "event %d", i)
			}
		}
		upd := evs[indexOf(aEvents, "a-nomis-update")]
		for _, name := range []string{"a-nomis-update", "c1-outcome"} {
			b, err := json.MarshalIndent(evs[indexOf(aEvents, name)], "", "  ")
			require.NoError(t, err)
			t.Logf("the event of %s:\n%s", name, b)
		}
		require.Equal(t, "nomis_change", upd["kind"])
		require.Equal(t, "update", upd["op"])
		require.Equal(t, "commit", upd["time_of"])
		require.Equal(t, "100:2", upd["nomis_alert"])
		require.Equal(t, ids.dps2, upd["dps_alert_id"])
		require.Equal(t, false, upd["sync"])
		require.Equal(t, "OIDALERT", upd["origin"])
		require.Equal(t, map[string]any{"commit": 1100.0, "change": 1100.0}, upd["position"])
		require.Equal(t, []any{
			map[string]any{"field": "expiry_date", "to": "2024-06-30"},
			map[string]any{"field": "comment_text", "personal": true},
		}, upd["changes"])
		dps := evs[indexOf(aEvents, "a-dps-create")]
		require.Equal(t, true, dps["sync"])
		require.Equal(t, "apply-dps", dps["origin"])
		c1 := evs[indexOf(aEvents, "c1")]
		require.Equal(t, "command_dps", c1["kind"])
		require.Equal(t, ids.c1.ID, c1["command_id"])
		require.Equal(t, "record", c1["time_of"])
		require.Equal(t, "APPLIED", c1["outcomes"].([]any)[0].(map[string]any)["result"])
		dlq := evs[indexOf(aEvents, "c3-dlq")]
		require.Equal(t, "refused", dlq["error_kind"])
		require.Equal(t, "apply-dps", dlq["stage"])
		require.Equal(t, ids.c3.ID, dlq["command_id"])
		require.NotContains(t, dlq, "error")
		bad := evs[indexOf(aEvents, "a-undecodable")]
		require.Equal(t, "undecodable", bad["kind"])
		require.Equal(t, "value: unknown magic byte", bad["undecodable"])
		require.Equal(t, true, evs[len(evs)-1]["unattributed"])
	})

	for _, sel := range []struct{ name, flag, value string }{
		{"dps alert", "--dps-alert", ids.dps2},
		{"nomis alert", "--nomis-alert", "100:2"},
	} {
		t.Run(sel.name, func(t *testing.T) {
			t.Parallel()
			evs := w.jsonEvents(t, sel.flag, sel.value)
			require.Len(t, evs, len(alertEvents))
			byRef := map[string]map[string]any{}
			for i, e := range evs {
				rec := e["record"].(map[string]any)
				ref := fmt.Sprintf("%s/%.0f/%.0f", rec["topic"], rec["partition"], rec["offset"])
				require.Equal(t, w.ref(alertEvents[i]), ref, "event %d", i)
				byRef[ref] = e
			}
			// Outcomes name their commands, commands their outcomes.
			for cmd, o := range map[string]string{"c1": "c1-outcome", "c2": "c2-outcome", "c3": "c3-outcome"} {
				oc := byRef[w.ref(o)]["command"].(map[string]any)
				require.Equal(t, w.ref(cmd), fmt.Sprintf("%s/%.0f/%.0f", oc["record"].(map[string]any)["topic"], oc["record"].(map[string]any)["partition"], oc["record"].(map[string]any)["offset"]))
				require.Equal(t, "DPS", oc["target"])
				outs := byRef[w.ref(cmd)]["outcomes"].([]any)
				require.Len(t, outs, 1)
			}
			require.Equal(t, "DELETE", byRef[w.ref("c3-dlq")]["command"].(map[string]any)["kind"])

			out, errOut, err := w.history(t, sel.flag, sel.value)
			require.NoError(t, err, errOut)
			require.Contains(t, out, "1 alert seen: nomis 100:2 = dps "+ids.dps2)
			require.NotContains(t, out, ids.dps1, "the other alert of the prisoner")
		})
	}

	t.Run("since until", func(t *testing.T) {
		t.Parallel()
		since, until := ids.t0.Add(3*time.Minute), ids.t0.Add(6*time.Minute)
		want := []string{"c1-outcome", "a-dps-create", "a-nomis-update", "a-undecodable", "c2", "c2-outcome"}
		for _, lookback := range []string{"", "--history.since_lookback=0s"} {
			args := []string{"--prisoner", "A1234BC", "--since", since.Format(time.RFC3339), "--until", until.Format(time.RFC3339)}
			if lookback != "" {
				args = append(args, lookback)
			}
			evs := w.jsonEvents(t, args...)
			require.Len(t, evs, len(want), lookback)
			for i, e := range evs {
				rec := e["record"].(map[string]any)
				require.Equal(t, w.ref(want[i]), fmt.Sprintf("%s/%.0f/%.0f", rec["topic"], rec["partition"], rec["offset"]))
			}
			if lookback == "" {
				require.Contains(t, evs[0], "command", "c1, written a minute before --since, is read: within history.since_lookback")
			} else {
				require.NotContains(t, evs[0], "command", "c1 was written before --since: not read")
			}
			require.Contains(t, evs[5], "command", "c2 is read")
		}

		// A change committed after --since in a record stamped before it
		// (clocks apart) is read within history.since_lookback.
		skewed := ids.t0.Add(19*time.Minute + 30*time.Second).Format(time.RFC3339)
		evs := w.jsonEvents(t, "--prisoner", "C1111CC", "--since", skewed)
		require.Len(t, evs, 1)
		require.Equal(t, "2024-06-10T09:20:00.000Z", evs[0]["time"])
		_, _, err := w.history(t, "--prisoner", "C1111CC", "--since", skewed, "--history.since_lookback=0s")
		require.ErrorIs(t, err, history.ErrNoEvents, "without the lookback the read starts after its record")

		out, errOut, err := w.history(t, "--nomis-alert", "100:2", "--until", ids.t0.Add(150*time.Second).Format(time.RFC3339))
		require.NoError(t, err, errOut)
		require.Contains(t, out, "2 events for NOMIS alert 100:2: 1 NOMIS change, 1 command→DPS;")
	})

	// Records that cannot be read, and user names, at the debug log level:
	// what each record is, by class, and where; never its bytes, the
	// decoder's message, a user name or alert text, on stdout or in the
	// logs.
	t.Run("undecodable and users at debug", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := w.history(t, "--dps-alert", ids.dps9, "--log.level=debug")
		require.NoError(t, err, errOut)
		t.Logf("alertsync history --dps-alert %s\n%s", ids.dps9, out)
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		require.Len(t, lines, 6, "header, three events, the record naming nobody, summary")
		require.Regexp(t, `undecodable +- +- +- +`+ids.dps9+` .* `+regexp.QuoteMeta(w.ref("d-malformed"))+` +value: malformed Avro body \(schema id \d+\)$`, lines[2])
		require.Regexp(t, `undecodable +- +- +- +`+ids.dps9+` .* `+regexp.QuoteMeta(w.ref("d-shape"))+` +shape: .*key\.id: does not match the image's id$`, lines[3])
		require.Regexp(t, `DLQ +decode +- +- +`+ids.dps9+` .* `+regexp.QuoteMeta(w.ref("d-dlq"))+` +stage=transform alert_key=dps:`+ids.dps9+` attempt=1 original=`, lines[4])
		require.Contains(t, errOut, `"level":"DEBUG"`, "debug logs were written")
		require.Contains(t, errOut, "a DLQ entry's original record cannot be decoded", "the undecodable original is logged")
		require.Contains(t, errOut, `"entry":"`+w.ref("d-dlq")+`"`, "by its place")

		out, errOut, err = w.history(t, "--prisoner", "B5678CD", "--log.level=debug")
		require.NoError(t, err, errOut)
		require.Contains(t, out, w.ref("b-dps-update"), "the DPS change with the actioned-by header is shown")
	})

	t.Run("no match", func(t *testing.T) {
		t.Parallel()
		out, errOut, err := w.history(t, "--prisoner", "Z9999ZZ")
		require.ErrorIs(t, err, history.ErrNoEvents)
		require.Equal(t, 1, ExitCode(err), "%v\n%s", err, errOut)
		require.ErrorContains(t, err, "no events found for prisoner Z9999ZZ in the topics (and 1 undecodable record naming nobody)")
		require.Empty(t, out)
		out, _, err = w.history(t, "--dps-alert", "0190cccc-0000-7000-8000-000000000009", "--json")
		require.Equal(t, 1, ExitCode(err))
		require.Equal(t, "[]\n", out)
		_, _, err = w.history(t, "--prisoner", "A1234BC", "--since", ids.t0.Add(time.Hour).Format(time.RFC3339))
		require.Equal(t, 1, ExitCode(err))
	})

	t.Run("unreachable registry", func(t *testing.T) {
		t.Parallel()
		_, errOut, err := run(t, "history", "--prisoner", "A1234BC", "--kafka.brokers="+strings.Join(w.brokers, ","), "--topics.prefix="+w.prefix,
			"--registry.url=http://127.0.0.1:1", "--registry.timeout=1s", "--log.level=warn")
		require.Equal(t, 2, ExitCode(err), "%v\n%s", err, errOut)
		require.ErrorContains(t, err, "schema registry at http://127.0.0.1:1 (registry.url)")
	})

	// A registry that knows none of the schema ids (another registry, or
	// one emptied): every record would be undecodable, so it is an error
	// naming registry.url, not "no events".
	t.Run("registry knows no schema", func(t *testing.T) {
		t.Parallel()
		empty := srfake.New()
		t.Cleanup(empty.Close)
		_, errOut, err := run(t, "history", "--prisoner", "A1234BC", "--kafka.brokers="+strings.Join(w.brokers, ","), "--topics.prefix="+w.prefix,
			"--registry.url="+empty.URL(), "--log.level=warn")
		require.Equal(t, 2, ExitCode(err), "%v\n%s", err, errOut)
		require.ErrorIs(t, err, schemas.ErrUnknownSchemaID)
		require.False(t, errors.Is(err, history.ErrNoEvents))
		require.ErrorContains(t, err, "the schema registry at "+empty.URL()+" (registry.url) knows none of the schema ids")
	})

	t.Run("topics missing", func(t *testing.T) {
		t.Parallel()
		_, errOut, err := run(t, "history", "--prisoner", "A1234BC", "--kafka.brokers="+strings.Join(w.brokers, ","), "--topics.prefix=nosuch.",
			"--registry.url="+w.regURL, "--log.level=warn")
		require.Equal(t, 2, ExitCode(err), "%v\n%s", err, errOut)
		require.ErrorContains(t, err, `none of the topics exists under topics.prefix "nosuch."`)
	})
}

func indexOf(names []string, name string) int {
	for i, n := range names {
		if n == name {
			return i
		}
	}
	panic("no event " + name)
}

// TestHistoryUnreachableBroker: with no broker listening, history fails
// naming the brokers, with exit status 2.
func TestHistoryUnreachableBroker(t *testing.T) {
	t.Parallel()
	_, errOut, err := run(t, "history", "--prisoner", "A1234BC", "--kafka.brokers=127.0.0.1:1", "--kafka.retry_timeout=1s", "--kafka.dial_timeout=1s", "--log.level=error")
	require.Error(t, err)
	require.ErrorContains(t, err, "kafka.brokers 127.0.0.1:1")
	require.ErrorContains(t, err, "are the brokers up and reachable from here?")
	require.Equal(t, 2, ExitCode(err), "%v\n%s", err, errOut)
	t.Log(err)
}

// TestHistoryUsage: exactly one selector, well formed, and a window whose
// end is not before its start; each mistake exits 2 before anything is
// read.
func TestHistoryUsage(t *testing.T) {
	t.Parallel()
	common := []string{"--kafka.brokers=127.0.0.1:1", "--log.level=error"}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "give exactly one of --prisoner"},
		{[]string{"--prisoner", "A1234BC", "--nomis-alert", "1:2"}, "give exactly one of"},
		{[]string{"--prisoner", "A1234BC", "--dps-alert", "0190aaaa-0000-7000-8000-000000000001"}, "give exactly one of"},
		{[]string{"--nomis-alert", "100"}, "is not BOOKING_ID:ALERT_SEQ"},
		{[]string{"--nomis-alert", "100:x"}, "is not BOOKING_ID:ALERT_SEQ"},
		{[]string{"--dps-alert", "not-a-uuid"}, "is not a UUID"},
		{[]string{"--prisoner", "A1234-BC"}, "is not a prison number"},
		{[]string{"--prisoner", "A1234BC", "--since", "yesterday"}, "--since"},
		{[]string{"--prisoner", "A1234BC", "--since", "1h", "--until", "2h"}, "is before --since"},
		{[]string{"--prisoner", "A1234BC", "extra"}, "unexpected arguments"},
	} {
		_, _, err := run(t, append(append([]string{"history"}, tc.args...), common...)...)
		var ue *UsageError
		require.ErrorAs(t, err, &ue, "%v", tc.args)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
		require.Equal(t, 2, ExitCode(err))
	}
	_, _, err := run(t, "history", "--prisoner", "A1234BC", "--history.timeout=0s")
	require.Equal(t, 2, ExitCode(err), "a bad configuration")
	require.ErrorContains(t, err, "history.timeout")
	require.False(t, errors.Is(err, history.ErrNoEvents))
}
