package history

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

var st0 = time.Date(2024, 6, 10, 9, 0, 0, 0, time.UTC)

// ev is an event of kind at minute min of st0, read at topic/offset, naming
// id.
func ev(kind Kind, minute int, topic string, offset int64, id ident) Event {
	e := Event{Kind: kind, Time: Time{st0.Add(time.Duration(minute) * time.Minute)}, Record: RecordRef{Topic: topic, Offset: offset}, ident: id}
	e.CommandID = id.commandID
	if kind == KindUndecodable {
		e.Unattributed = id.empty()
	}
	return e
}

func group(keys ...alertKey) [][]alertKey { return [][]alertKey{keys} }

// world: prisoner P's alert nomis:1:1 becomes dps:d1 (the outcome of
// command c1 links the two keys); its later NOMIS change names no prisoner
// (the booking is gone) but its booking; a DLQ entry knows the alert only by
// its DPS id; prisoner Q's alert nomis:2:1 = dps:d2 and its command c2; an
// undecodable record naming nobody.
func selectWorld() []Event {
	return []Event{
		ev(KindNOMISChange, 1, "n", 0, ident{prisons: []string{"P"}, alerts: group("nomis:1:1"), bookings: []int64{1}}),
		ev(KindCommandDPS, 2, "c", 0, ident{prisons: []string{"P"}, alerts: group("nomis:1:1"), commandID: "c1"}),
		ev(KindOutcome, 3, "o", 0, ident{prisons: []string{"P"}, alerts: group("dps:d1", "nomis:1:1"), commandID: "c1"}),
		ev(KindDPSChange, 4, "d", 0, ident{prisons: []string{"P"}, alerts: group("dps:d1")}),
		ev(KindNOMISChange, 5, "n", 1, ident{alerts: group("nomis:1:1"), bookings: []int64{1}}),
		ev(KindDLQ, 6, "q", 0, ident{alerts: group("dps:d1")}),
		ev(KindNOMISChange, 1, "n", 2, ident{prisons: []string{"Q"}, alerts: group("nomis:2:1"), bookings: []int64{2}}),
		ev(KindCommandDPS, 2, "c", 1, ident{prisons: []string{"Q"}, alerts: group("nomis:2:1"), commandID: "c2"}),
		ev(KindOutcome, 3, "o", 1, ident{prisons: []string{"Q"}, alerts: group("dps:d2", "nomis:2:1"), commandID: "c2"}),
		// A DLQ entry of c2 that knows only its command (its original).
		ev(KindDLQ, 4, "q", 1, ident{commandID: "c2"}),
		ev(KindUndecodable, 7, "d", 1, ident{}),
	}
}

func refs(s Selection) []string {
	out := make([]string, len(s.Events))
	for i, e := range s.Events {
		out[i] = e.Record.String()
	}
	return out
}

func TestSelect(t *testing.T) {
	t.Parallel()
	pEvents := []string{"n/0/0", "c/0/0", "o/0/0", "d/0/0", "n/0/1", "q/0/0", "d/0/1"}
	for _, tc := range []struct {
		name         string
		sel          Selector
		w            Window
		want         []string
		matched      int
		alerts       [][]string
		unattributed int
	}{
		{"prisoner", Selector{PrisonNumber: "P"}, Window{}, pEvents, 6, [][]string{{"nomis 1:1", "dps d1"}}, 1},
		{"DPS id", Selector{DPSAlertID: "d1"}, Window{}, pEvents, 6, [][]string{{"nomis 1:1", "dps d1"}}, 1},
		{"NOMIS key", Selector{NOMIS: true, NOMISBookingID: 1, NOMISAlertSeq: 1}, Window{}, pEvents, 6, [][]string{{"nomis 1:1", "dps d1"}}, 1},
		{"other prisoner", Selector{PrisonNumber: "Q"}, Window{}, []string{"n/0/2", "c/0/1", "o/0/1", "q/0/1", "d/0/1"}, 4, [][]string{{"nomis 2:1", "dps d2"}}, 1},
		{"window", Selector{PrisonNumber: "P"}, Window{Since: st0.Add(2 * time.Minute), Until: st0.Add(4 * time.Minute)}, []string{"c/0/0", "o/0/0", "d/0/0"}, 3, [][]string{{"nomis 1:1", "dps d1"}}, 0},
		{"nobody", Selector{PrisonNumber: "Z"}, Window{}, []string{"d/0/1"}, 0, nil, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := Select(selectWorld(), tc.sel, tc.w)
			require.Equal(t, tc.want, refs(s))
			require.Equal(t, tc.matched, s.Matched)
			require.Equal(t, tc.unattributed, s.Unattributed)
			require.Equal(t, tc.alerts, s.Alerts)
		})
	}

	s := Select(selectWorld(), Selector{PrisonNumber: "Q"}, Window{})
	require.Equal(t, []OutcomeRef{{Result: "", Record: RecordRef{Topic: "o", Offset: 1}}}, s.Events[1].Outcomes, "the command lists its outcome")
	require.Equal(t, &CommandRef{Record: RecordRef{Topic: "c", Offset: 1}}, s.Events[2].Command, "the outcome names its command")
	require.Equal(t, &CommandRef{Record: RecordRef{Topic: "c", Offset: 1}}, s.Events[3].Command, "the DLQ entry names its command")
}

// TestSelectOrder: events sort by time, then topic, partition and offset.
func TestSelectOrder(t *testing.T) {
	t.Parallel()
	id := ident{prisons: []string{"P"}}
	evs := []Event{ev(KindOutcome, 1, "b", 0, id), ev(KindDLQ, 1, "a", 5, id), ev(KindDLQ, 1, "a", 2, id), ev(KindDPSChange, 0, "z", 9, id)}
	evs[0].Record.Partition = 1
	require.Equal(t, []string{"z/0/9", "a/0/2", "a/0/5", "b/1/0"}, refs(Select(evs, Selector{PrisonNumber: "P"}, Window{})))
}

// TestSelectByBooking: an event that names no prisoner is the prisoner's
// when it names one of their bookings, even with an alert of it no other
// event names; not when it names another booking.
func TestSelectByBooking(t *testing.T) {
	t.Parallel()
	evs := append(selectWorld(),
		ev(KindNOMISChange, 8, "n", 3, ident{alerts: group("nomis:1:7"), bookings: []int64{1}}),
		ev(KindNOMISChange, 8, "n", 4, ident{alerts: group("nomis:3:1"), bookings: []int64{3}}),
	)
	got := refs(Select(evs, Selector{PrisonNumber: "P"}, Window{}))
	require.Contains(t, got, "n/0/3", "booking 1 is P's")
	require.NotContains(t, got, "n/0/4", "booking 3 is nobody's")
}

// TestSelectBothImages: a DPS change that moves an alert from one prisoner
// to another (its before and after images name both) is in the history of
// each, and identOf reads both images.
func TestSelectBothImages(t *testing.T) {
	t.Parallel()
	row := func(p string) any {
		return schemas.OptRecord("alertsync.dps.public.alert.Value", map[string]any{"id": "d9", "prison_number": p})
	}
	id := identOf("dps.public.alert", map[string]any{"id": "d9"}, map[string]any{"before": row("P"), "after": row("Q")})
	require.Equal(t, []string{"Q", "P"}, id.prisons)
	evs := []Event{ev(KindDPSChange, 1, "d", 0, id)}
	for _, p := range []string{"P", "Q"} {
		require.Len(t, Select(evs, Selector{PrisonNumber: p}, Window{}).Events, 1, p)
	}
}

// TestSelectLinksDeterministic: a command read twice (a retried
// transaction) is named by its outcomes as the copy read first in the
// topic, and a command lists its outcomes by where they were read – however
// the partitions interleaved; an empty command id links nothing.
func TestSelectLinksDeterministic(t *testing.T) {
	t.Parallel()
	id := ident{prisons: []string{"P"}, commandID: "c1"}
	cmd := func(offset int64) Event { return ev(KindCommandDPS, 1, "c", offset, id) }
	out := func(p int32) Event {
		e := ev(KindOutcome, 2, "o", 0, id)
		e.Record.Partition = p
		return e
	}
	noID := ident{prisons: []string{"P"}}
	for _, evs := range [][]Event{
		{cmd(7), cmd(3), out(2), out(1), ev(KindCommandDPS, 1, "c", 9, noID), ev(KindOutcome, 2, "o", 9, noID)},
		{out(1), ev(KindOutcome, 2, "o", 9, noID), out(2), cmd(3), ev(KindCommandDPS, 1, "c", 9, noID), cmd(7)},
	} {
		s := Select(evs, Selector{PrisonNumber: "P"}, Window{})
		require.Equal(t, []string{"c/0/3", "c/0/7", "c/0/9", "o/0/9", "o/1/0", "o/2/0"}, refs(s))
		for _, e := range s.Events {
			switch {
			case e.CommandID == "" && e.Kind == KindCommandDPS:
				require.Empty(t, e.Outcomes, "an empty command id links nothing")
			case e.CommandID == "":
				require.Nil(t, e.Command, "an empty command id links nothing")
			case e.Kind == KindCommandDPS:
				require.Equal(t, []string{"o/1/0", "o/2/0"}, []string{e.Outcomes[0].Record.String(), e.Outcomes[1].Record.String()})
			default:
				require.Equal(t, "c/0/3", e.Command.Record.String())
			}
		}
	}
}

// TestSelectTiesBySourcePosition: events of one millisecond sort by their
// source positions, each database's in its own order, before topic,
// partition and offset; events without a position come first.
func TestSelectTiesBySourcePosition(t *testing.T) {
	t.Parallel()
	id := ident{prisons: []string{"P"}}
	at := func(kind Kind, topic string, offset, commit, change int64) Event {
		e := ev(kind, 1, topic, offset, id)
		e.Position = &Position{Commit: commit, Change: change}
		return e
	}
	evs := []Event{
		at(KindNOMISChange, "n", 0, 10, 3), // one NOMIS transaction's changes, written out of order
		at(KindNOMISChange, "n", 1, 10, 2),
		at(KindNOMISChange, "n", 2, 9, 9),
		at(KindDPSChange, "d", 5, 200, 1),
		at(KindDPSChange, "d", 4, 300, 1),
		ev(KindDLQ, 1, "q", 0, id),
	}
	want := []string{"q/0/0", "d/0/5", "d/0/4", "n/0/2", "n/0/1", "n/0/0"}
	require.Equal(t, want, refs(Select(evs, Selector{PrisonNumber: "P"}, Window{})))
	slices.Reverse(evs)
	require.Equal(t, want, refs(Select(evs, Selector{PrisonNumber: "P"}, Window{})), "whatever order they were read in")
}

// TestTimelineLinks: Timeline.Select joins alerts by every record read, not
// only by the events kept: a DLQ entry known by its DPS id is the
// prisoner's through a link made by a record that was not kept.
func TestTimelineLinks(t *testing.T) {
	t.Parallel()
	evs := []Event{
		ev(KindNOMISChange, 1, "n", 0, ident{prisons: []string{"P"}, alerts: group("nomis:1:1")}),
		ev(KindDLQ, 2, "q", 0, ident{alerts: group("dps:d1")}),
	}
	require.Len(t, Select(evs, Selector{PrisonNumber: "P"}, Window{}).Events, 1)
	links := unionFind{}
	links.union("nomis:1:1", "dps:d1")
	s := (&Timeline{Events: evs, links: links}).Select(Selector{PrisonNumber: "P"}, Window{})
	require.Len(t, s.Events, 2)
	require.Equal(t, [][]string{{"nomis 1:1", "dps d1"}}, s.Alerts)
}

// TestUnionFind: keys joined in any order share the smallest as root; a
// key joined with no other has no entry.
func TestUnionFind(t *testing.T) {
	t.Parallel()
	u := unionFind{}
	u.union("dps:b", "nomis:2:1")
	u.union("dps:c", "dps:b")
	u.union("dps:a", "nomis:2:1")
	for _, k := range []alertKey{"dps:a", "dps:b", "dps:c", "nomis:2:1"} {
		require.Equal(t, alertKey("dps:a"), u.find(k))
	}
	require.Equal(t, alertKey("nomis:9:9"), u.find("nomis:9:9"))
	require.Len(t, u, 3, "roots and lone keys have no entry")
	m := u.members(map[alertKey]bool{"dps:a": true, "nomis:9:9": true})
	slices.Sort(m["dps:a"])
	require.Equal(t, []alertKey{"dps:a", "dps:b", "dps:c", "nomis:2:1"}, m["dps:a"])
	require.Equal(t, []alertKey{"nomis:9:9"}, m["nomis:9:9"])
}

// TestDiffNamesPersonalFields: a personal field is named when a create sets
// it or an update changes it, never with its value, and a delete does not
// name it; safe fields carry their values.
func TestDiffNamesPersonalFields(t *testing.T) {
	t.Parallel()
	secret, other := "SECRET-TEXT-1", "SECRET-TEXT-2"
	code, code2 := "HA", "XA"
	image := func(c, text *string) []fieldValue {
		return []fieldValue{safe("alert_code", c), personal("comment_text", text)}
	}
	for _, tc := range []struct {
		name          string
		before, after []fieldValue
		img           images
		want          []Change
		text          string
	}{
		{"create", nil, image(&code, &secret), afterOnly,
			[]Change{{Field: "alert_code", To: &code}, {Field: "comment_text", Personal: true}}, "alert_code=HA comment_text set"},
		{"create without text", nil, image(&code, nil), afterOnly, []Change{{Field: "alert_code", To: &code}}, "alert_code=HA"},
		{"update text", image(&code, &secret), image(&code, &other), bothImages,
			[]Change{{Field: "comment_text", Personal: true}}, "comment_text changed"},
		{"clear text", image(&code, &secret), image(&code, nil), bothImages,
			[]Change{{Field: "comment_text", Personal: true}}, "comment_text changed"},
		{"update code", image(&code, &secret), image(&code2, &secret), bothImages,
			[]Change{{Field: "alert_code", From: &code, To: &code2}}, "alert_code HA→XA"},
		{"delete", image(&code, &secret), nil, beforeOnly, []Change{{Field: "alert_code", From: &code}}, "was alert_code=HA"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := diff(tc.before, tc.after)
			require.Equal(t, tc.want, got)
			text := changes(got, tc.img)
			require.Equal(t, tc.text, text)
			var b strings.Builder
			require.NoError(t, WriteJSON(&b, []Event{{Kind: KindNOMISChange, Changes: got}}))
			require.NotContains(t, b.String()+text, "SECRET")
		})
	}
}

func TestParseSelectors(t *testing.T) {
	t.Parallel()
	pn, err := ParsePrisonNumber(" a1234bc ")
	require.NoError(t, err)
	require.Equal(t, "A1234BC", pn)
	for _, bad := range []string{"", "A1234-BC", "ABCDEFGHIJK"} {
		_, err := ParsePrisonNumber(bad)
		require.Error(t, err, bad)
	}
	id, err := ParseDPSAlertID("0190AAAA-0000-7000-8000-000000000001")
	require.NoError(t, err)
	require.Equal(t, "0190aaaa-0000-7000-8000-000000000001", id)
	_, err = ParseDPSAlertID("nope")
	require.Error(t, err)
	b, s, err := ParseNOMISAlert("1234567:3")
	require.NoError(t, err)
	require.Equal(t, int64(1234567), b)
	require.Equal(t, int32(3), s)
	for _, bad := range []string{"1", "1:", ":1", "a:1", "1:0", "-1:1", "1:99999999999"} {
		_, _, err := ParseNOMISAlert(bad)
		require.Error(t, err, bad)
	}
	k, p := parseAlertKey("nomis:12:3")
	require.Equal(t, alertKey("nomis:12:3"), k)
	require.Empty(t, p)
	k, _ = parseAlertKey("dps:0190AAAA-0000-7000-8000-000000000001")
	require.Equal(t, alertKey("dps:0190aaaa-0000-7000-8000-000000000001"), k)
	k, p = parseAlertKey("prisoner:A1234BC")
	require.Empty(t, k)
	require.Equal(t, "A1234BC", p)
	k, p = parseAlertKey("topic/3")
	require.Empty(t, k)
	require.Empty(t, p)
}
