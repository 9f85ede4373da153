package dps

import (
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
	"github.com/alertsync/alertsync/schemas"
)

// Integration tests of the capture's records against a real PostgreSQL and
// Kafka (kfake, or the broker of ALERTSYNC_TEST_KAFKA): operations,
// transactions, value conversion of every column type, long and TOASTed
// text. See snapshot_integration_test.go and lifecycle_integration_test.go
// for the snapshot, schema changes, restarts and metrics.

// byKey groups records by key id, each group in the order consumed (per key
// one partition, so offset order).
func byKey(recs []rec) map[string][]rec {
	out := map[string][]rec{}
	for _, x := range recs {
		out[x.keyID()] = append(out[x.keyID()], x)
	}
	return out
}

// ops returns the op letters of recs, "tombstone" for a tombstone.
func ops(recs []rec) []string {
	out := make([]string, len(recs))
	for i, x := range recs {
		if x.Value == nil {
			out[i] = "tombstone"
			continue
		}
		out[i] = x.op()
	}
	return out
}

// TestInsertUpdateDeleteTruncate: each kind of change of alert arrives with
// its op, before and after images as REPLICA IDENTITY FULL gives them, a
// tombstone after the delete, and a truncate (of alert, cascading to
// audit_event) as one op "t" record per table with no key and no images.
func TestInsertUpdateDeleteTruncate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)

	const one, two = "0190a3f4-0000-7000-8000-000000001001", "0190a3f4-0000-7000-8000-000000001002"
	insertAlert(t, h.db, one, "A1111AA", "XA")
	h.db.Exec(t, "UPDATE alert SET description = 'changed', authorised_by = NULL, version = 2 WHERE id = $1", one)
	h.db.Exec(t, "DELETE FROM alert WHERE id = $1", one)
	insertAlert(t, h.db, two, "A1111AA", "HA")
	h.db.Exec(t, `INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
		VALUES ('0190a3f4-0000-7000-8000-000000001003', $1, 'CREATED', 'Alert created', '2024-06-01 12:00:00', 'USER1', 'User One', 'DPS')`, two)
	h.db.Exec(t, "TRUNCATE alert CASCADE")

	// alert: c u d tombstone (one), c (two), t; audit_event: c, t.
	alerts := h.consume(t, 6, 30*time.Second, h.topic("alert"))
	require.Len(t, alerts, 6)
	audits := h.consume(t, 2, 30*time.Second, h.topic("audit_event"))
	require.Len(t, audits, 2)
	groups := byKey(alerts)

	got := groups[one]
	require.Equal(t, []string{"c", "u", "d", "tombstone"}, ops(got))
	cases := []struct {
		name                    string
		x                       rec
		beforeDesc, afterDesc   any
		beforeAuth, afterAuth   any
		beforeVersion, afterVer any
	}{
		{"insert", got[0], nil, "desc", nil, "auth", nil, int32(1)},
		{"update", got[1], "desc", "changed", "auth", nil, int32(1), int32(2)},
		{"delete", got[2], "changed", nil, nil, nil, int32(2), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.beforeVersion == nil {
				require.Nil(t, tc.x.row("before"), "no before image")
			} else {
				require.Equal(t, tc.beforeDesc, tc.x.field("before", "description"))
				require.Equal(t, tc.beforeAuth, tc.x.field("before", "authorised_by"))
				require.Equal(t, tc.beforeVersion, tc.x.field("before", "version"))
				require.Equal(t, one, tc.x.field("before", "id"))
			}
			if tc.afterVer == nil {
				require.Nil(t, tc.x.row("after"), "no after image")
			} else {
				require.Equal(t, tc.afterDesc, tc.x.field("after", "description"))
				require.Equal(t, tc.afterAuth, tc.x.field("after", "authorised_by"))
				require.Equal(t, tc.afterVer, tc.x.field("after", "version"))
				require.Equal(t, one, tc.x.field("after", "id"))
			}
			require.Equal(t, "alert", tc.x.source()["table"])
			require.Equal(t, "public", tc.x.source()["schema"])
			require.Equal(t, h.db.Name, tc.x.source()["db"])
			require.Equal(t, "postgresql", tc.x.source()["connector"])
			require.Equal(t, "false", tc.x.source()["snapshot"])
			require.NotNil(t, tc.x.source()["txId"])
		})
	}
	require.Equal(t, []string{"c"}, ops(groups[two]))

	truncs := groups[""]
	require.Len(t, truncs, 1, "one truncate record for alert")
	require.Equal(t, "t", truncs[0].op())
	require.Nil(t, truncs[0].Key, "a truncate has no key")
	require.Nil(t, truncs[0].row("before"))
	require.Nil(t, truncs[0].row("after"))
	require.Equal(t, "alert", truncs[0].source()["table"])

	auditOps := map[string]string{}
	for _, x := range audits {
		auditOps[x.keyID()] = x.op()
		require.Equal(t, "audit_event", x.source()["table"])
	}
	require.Equal(t, map[string]string{"0190a3f4-0000-7000-8000-000000001003": "c", "": "t"}, auditOps)

	// Commit positions follow the statements: every statement above ran in
	// its own transaction, and the cascading truncate is one.
	var commits []int64
	for _, x := range []rec{got[0], got[1], got[2], groups[two][0], truncs[0]} {
		c, _ := x.position()
		commits = append(commits, c)
	}
	require.True(t, slices.IsSorted(commits) && len(slices.Compact(slices.Clone(commits))) == len(commits), "commit positions grow: %v", commits)
	ct, _ := truncs[0].position()
	for _, x := range audits {
		if x.op() == "t" {
			c, _ := x.position()
			require.Equal(t, ct, c, "alert and audit_event truncated in one transaction")
		}
	}
}

// change is an expected record of a transaction, in statement order.
type change struct {
	topic, id, op string
}

// TestTransactions: every change of a multi-row, multi-table transaction is
// published, all with the transaction's commit position, txId and commit
// time, and with distinct change positions in statement order. Two changes
// of one row in one transaction are two records, in order, on one partition.
func TestTransactions(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	xa := alertCodeID(t, h.db, "XA")
	alertID := func(tc, i int) string { return fmt.Sprintf("0190a3f4-0000-7000-8000-%06d%06d", tc, i) }
	auditID := func(tc, i int) string { return fmt.Sprintf("0190a3f4-0000-7000-9000-%06d%06d", tc, i) }
	insert := func(tc, i int) string {
		return fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at, version)
			VALUES ('%s', %d, 'B2222BB', 'first', '2024-01-02', '2024-06-01 12:00:00', 1)`, alertID(tc, i), xa)
	}
	audit := func(tc, i int) string {
		return fmt.Sprintf(`INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
			VALUES ('%s', '%s', 'CREATED', 'created', '2024-06-01 12:00:00', 'U', 'U', 'DPS')`, auditID(tc, i), alertID(tc, i))
	}
	update := func(tc, i, v int) string {
		return fmt.Sprintf(`UPDATE alert SET description = 'v%d', version = %d WHERE id = '%s'`, v, v, alertID(tc, i))
	}
	cases := []struct {
		name  string
		stmts []string
		want  []change
	}{
		{
			name: "multi-row statement",
			stmts: []string{fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at)
				SELECT ('0190a3f4-0000-7000-8000-000001' || lpad(g::text, 6, '0'))::uuid, %d, 'B2222BB', '2024-01-02', '2024-06-01 12:00:00'
				  FROM generate_series(1, 50) g ORDER BY g`, xa)},
			want: func() []change {
				var w []change
				for i := 1; i <= 50; i++ {
					w = append(w, change{"alert", alertID(1, i), "c"})
				}
				return w
			}(),
		},
		{
			name:  "alert and audit_event",
			stmts: []string{insert(2, 1), audit(2, 1), insert(2, 2), audit(2, 2), update(2, 1, 2), fmt.Sprintf("DELETE FROM audit_event WHERE id = '%s'", auditID(2, 2))},
			want: []change{
				{"alert", alertID(2, 1), "c"}, {"audit_event", auditID(2, 1), "c"},
				{"alert", alertID(2, 2), "c"}, {"audit_event", auditID(2, 2), "c"},
				{"alert", alertID(2, 1), "u"}, {"audit_event", auditID(2, 2), "d"},
			},
		},
		{
			name:  "insert then update of one row",
			stmts: []string{insert(3, 1), update(3, 1, 2)},
			want:  []change{{"alert", alertID(3, 1), "c"}, {"alert", alertID(3, 1), "u"}},
		},
		{
			name:  "insert, two updates and a delete of one row",
			stmts: []string{insert(4, 1), update(4, 1, 2), update(4, 1, 3), fmt.Sprintf("DELETE FROM alert WHERE id = '%s'", alertID(4, 1))},
			want: []change{
				{"alert", alertID(4, 1), "c"}, {"alert", alertID(4, 1), "u"},
				{"alert", alertID(4, 1), "u"}, {"alert", alertID(4, 1), "d"},
			},
		},
	}
	// One transaction per case, run in order; each case then reads its own
	// records out of everything published.
	for _, tc := range cases {
		h.db.Exec(t, "BEGIN;\n"+strings.Join(tc.stmts, ";\n")+";\nCOMMIT")
	}
	total := 0
	for _, tc := range cases {
		total += len(tc.want)
		for _, w := range tc.want {
			if w.op == "d" {
				total++ // tombstone
			}
		}
	}
	all := h.consume(t, total, 30*time.Second, h.topic("alert"), h.topic("audit_event"))
	require.Len(t, all, total)

	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mine := map[string]bool{}
			for _, w := range tc.want {
				mine[w.id] = true
			}
			var got []rec
			for _, x := range all {
				if mine[x.keyID()] && x.Value != nil {
					got = append(got, x)
				}
			}
			require.Len(t, got, len(tc.want))
			// Order by change position; it must be statement order.
			slices.SortFunc(got, func(a, b rec) int {
				_, ca := a.position()
				_, cb := b.position()
				return cmp.Compare(ca, cb)
			})
			commit, _ := got[0].position()
			txID := got[0].source()["txId"]
			tsMs := got[0].source()["ts_ms"]
			seen := map[int64]bool{}
			for j, x := range got {
				c, ch := x.position()
				require.Equal(t, tc.want[j], change{x.source()["table"].(string), x.keyID(), x.op()}, "change %d in statement order", j)
				require.Equal(t, commit, c, "one commit position per transaction")
				require.Equal(t, txID, x.source()["txId"])
				require.Equal(t, tsMs, x.source()["ts_ms"])
				require.Less(t, ch, c, "a change's WAL position precedes its commit's")
				require.False(t, seen[ch], "change position %d twice", ch)
				seen[ch] = true
				require.Equal(t, map[string]any{"long": ch}, x.source()["lsn"], "source.lsn is the change position")
			}
			if i > 0 {
				// Transactions commit in case order.
				prev := cases[i-1].want[0].id
				for _, x := range all {
					if x.keyID() == prev && x.Value != nil {
						pc, _ := x.position()
						require.Less(t, pc, commit)
						break
					}
				}
			}
			// Per key, Kafka holds the changes in the same order (one
			// partition, offsets growing).
			for id, recs := range byKey(got) {
				var offsets []int64
				for _, x := range recs {
					require.Equal(t, recs[0].Partition, x.Partition, "key %s on one partition", id)
					offsets = append(offsets, x.Offset)
				}
				require.True(t, slices.IsSorted(offsets), "key %s: Kafka order is change order", id)
			}
		})
	}
	for _, x := range all {
		switch {
		case x.keyID() == alertID(3, 1) && x.op() == "u":
			// The update of an inserted row carries the inserted row as before image.
			require.Equal(t, "first", x.field("before", "description"))
			require.Equal(t, "v2", x.field("after", "description"))
		case x.keyID() == auditID(2, 2) && x.op() == "d":
			// audit_event has REPLICA IDENTITY DEFAULT: pgoutput sends only
			// the key of a deleted row, so the record has the key and no
			// (made-up) before image.
			require.Nil(t, x.row("before"))
			require.Equal(t, map[string]any{"id": auditID(2, 2)}, x.Key)
		}
	}
}

// TestLongDescription: descriptions of 4000 characters, with characters of
// one to four bytes in UTF-8, arrive exactly, from the snapshot and from the
// stream.
func TestLongDescription(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	pieces := []string{"a", "é", "€", "😀", "\n", "'", "\"", "\\", "ß", "中", "\t", "Z"}
	texts := map[string]string{}
	for i, name := range []string{"snapshot", "stream"} {
		var b strings.Builder
		for n := 0; n < 4000; n++ {
			b.WriteString(pieces[(n*7+i)%len(pieces)])
		}
		texts[name] = b.String()
		require.Equal(t, 4000, utf8.RuneCountInString(texts[name]))
	}
	xa := alertCodeID(t, h.db, "XA")
	ins := func(id, desc string) {
		h.db.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, description, active_from, created_at) VALUES ($1, $2, 'C3333CC', $3, '2024-01-02', '2024-06-01 12:00:00')`, id, xa, desc)
		require.Equal(t, int32(4000), pgtest.QueryValue[int32](t, h.db, "SELECT char_length(description) FROM alert WHERE id = $1", id))
	}
	ids := map[string]string{"snapshot": "0190a3f4-0000-7000-8000-000000002001", "stream": "0190a3f4-0000-7000-8000-000000002002"}
	ins(ids["snapshot"], texts["snapshot"])
	r := h.start(t)
	h.waitRunning(t, r)
	ins(ids["stream"], texts["stream"])
	recs := byKey(h.consume(t, 2, 30*time.Second, h.topic("alert")))
	for _, name := range []string{"snapshot", "stream"} {
		t.Run(name, func(t *testing.T) {
			got := recs[ids[name]]
			require.Len(t, got, 1)
			desc, ok := got[0].field("after", "description").(string)
			require.True(t, ok, "description is a string")
			require.Equal(t, texts[name], desc)
		})
	}
}

// incompressible returns n random characters from a large alphabet.
func incompressible(rng *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteRune(rune(0x21 + rng.IntN(0x5e)))
	}
	return b.String()
}

// TestUnchangedTOAST: an update that leaves a TOASTed description unchanged
// (pgoutput then sends no value for it) publishes the full description in
// the after image, copied from the before image, for a row from the
// snapshot and a streamed one; an update of the description itself
// publishes the new text.
func TestUnchangedTOAST(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	// EXTERNAL: stored out of line, uncompressed, once above ~2 kB.
	h.db.Exec(t, "ALTER TABLE alert ALTER COLUMN description SET STORAGE EXTERNAL")
	rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // test data
	xa := alertCodeID(t, h.db, "XA")
	ids := []string{"0190a3f4-0000-7000-8000-000000003001", "0190a3f4-0000-7000-8000-000000003002"}
	texts := []string{incompressible(rng, 3990), incompressible(rng, 3999)}
	ins := func(i int) {
		h.db.Exec(t, `INSERT INTO alert (id, alert_code_id, prison_number, description, authorised_by, active_from, created_at, version)
			VALUES ($1, $2, 'D4444DD', $3, 'before', '2024-01-02', '2024-06-01 12:00:00', 1)`, ids[i], xa, texts[i])
	}
	ins(0)
	r := h.start(t)
	h.waitRunning(t, r)
	ins(1)
	toast := pgtest.QueryValue[int64](t, h.db, "SELECT count(*) FROM "+
		pgtest.QueryValue[string](t, h.db, "SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'alert'::regclass"))
	require.GreaterOrEqual(t, toast, int64(2*2), "both descriptions stored out of line in the TOAST table")

	newText := incompressible(rng, 4000)
	for _, id := range ids {
		h.db.Exec(t, "UPDATE alert SET version = 2, authorised_by = 'after' WHERE id = $1", id)
	}
	h.db.Exec(t, "UPDATE alert SET description = $2, version = 3 WHERE id = $1", ids[1], newText)
	h.db.Exec(t, "UPDATE alert SET version = 4 WHERE id = $1", ids[1])

	recs := byKey(h.consume(t, 2+1+1+2, 30*time.Second, h.topic("alert")))
	cases := []struct {
		name      string
		id        string
		wantOps   []string
		wantAfter []string // description of each record's after image
	}{
		{"row from the snapshot", ids[0], []string{"r", "u"}, []string{texts[0], texts[0]}},
		{"streamed row", ids[1], []string{"c", "u", "u", "u"}, []string{texts[1], texts[1], newText, newText}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := recs[tc.id]
			require.Equal(t, tc.wantOps, ops(got))
			for i, x := range got {
				desc, _ := x.field("after", "description").(string)
				require.Equal(t, len(tc.wantAfter[i]), len(desc), "record %d: description length", i)
				require.Equal(t, tc.wantAfter[i], desc, "record %d: full description in the after image", i)
				if x.op() == "u" {
					require.Equal(t, tc.wantAfter[i-1], x.field("before", "description"), "record %d: before image", i)
				}
			}
			require.Equal(t, "after", got[1].field("after", "authorised_by"))
		})
	}
}

// colSpec is a column value: its SQL literal and the value the record must
// carry (nil for NULL).
type colSpec struct {
	sql  string
	want any
}

// columnSpecs returns a row of each DPS table, variant k, with every column
// set; the tables reference each other's rows of the same variant.
func columnSpecs(k int) map[string]map[string]colSpec {
	typeID := int64(9007199254740993) + int64(k) // 2^53+1: exact only as a long
	codeID := int64(1)<<40 + int64(k)
	alertID := fmt.Sprintf("0190a3f4-0000-7000-8000-%012d", 4000+k)
	auditID := fmt.Sprintf("0190a3f4-0000-7000-9000-%012d", 4000+k)
	str := func(s string) colSpec { return colSpec{"'" + strings.ReplaceAll(s, "'", "''") + "'", s} }
	// Europe/London wall clock to UTC: GMT in winter, BST (UTC+1) in summer.
	winter := colSpec{"'2024-01-15 10:30:00.123456'", time.Date(2024, 1, 15, 10, 30, 0, 123456000, time.UTC)}
	summer := colSpec{"'2024-07-15 10:30:00.654321'", time.Date(2024, 7, 15, 9, 30, 0, 654321000, time.UTC)}
	summerEnd := colSpec{"'2023-10-29 00:59:59.999999'", time.Date(2023, 10, 28, 23, 59, 59, 999999000, time.UTC)}
	winterStart := colSpec{"'2023-10-29 02:00:00'", time.Date(2023, 10, 29, 2, 0, 0, 0, time.UTC)}
	date := func(y int, m time.Month, d int) colSpec {
		return colSpec{fmt.Sprintf("'%04d-%02d-%02d'", y, m, d), time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
	}
	return map[string]map[string]colSpec{
		"alert_type": {
			"id":             {fmt.Sprint(typeID), typeID},
			"code":           str(fmt.Sprintf("ZT%d", k)),
			"description":    str("Zed type – ü"),
			"list_sequence":  {"2147483647", int32(2147483647)},
			"created_at":     winter,
			"created_by":     str("CREATOR"),
			"modified_at":    summer,
			"modified_by":    str("MODIFIER"),
			"deactivated_at": summerEnd,
			"deactivated_by": str("DEACTIVATOR"),
		},
		"alert_code": {
			"id":             {fmt.Sprint(codeID), codeID},
			"alert_type_id":  {fmt.Sprint(typeID), typeID},
			"code":           str(fmt.Sprintf("ZC%d", k)),
			"description":    str("Zed code 'quoted'"),
			"restricted":     {"true", true},
			"list_sequence":  {"-2147483648", int32(-2147483648)},
			"created_at":     summer,
			"created_by":     str("C"),
			"modified_at":    winterStart,
			"modified_by":    str("M"),
			"deactivated_at": winter,
			"deactivated_by": str("D"),
		},
		"alert": {
			"id":                       {"'" + alertID + "'", alertID},
			"alert_code_id":            {fmt.Sprint(codeID), codeID},
			"prison_number":            str("Z9999ZZ"),
			"description":              str("Line one\nline two – ünïcödé 😀"),
			"authorised_by":            str("Dr O'Neil"),
			"active_from":              date(2024, 2, 29),
			"active_to":                date(1999, 12, 31),
			"created_at":               summer,
			"last_modified_at":         winter,
			"deleted_at":               summerEnd,
			"prison_code_when_created": str("MDI"),
			"version":                  {"-7", int32(-7)},
		},
		"audit_event": {
			"id":                       {"'" + auditID + "'", auditID},
			"alert_id":                 {"'" + alertID + "'", alertID},
			"action":                   str("UPDATED"),
			"description":              str("Alert updated"),
			"actioned_at":              winterStart,
			"actioned_by":              str("USER_64"),
			"actioned_by_display_name": str("User Sixty-Four"),
			"source":                   str("NOMIS"),
			"description_updated":      {"true", true},
			"authorised_by_updated":    {"false", false},
			"active_from_updated":      {"true", true},
			"active_to_updated":        {"false", false},
		},
	}
}

// requireValue compares a decoded value with the expected one, times as
// instants, everything else with its Go type.
func requireValue(t *testing.T, want, got any, msgAndArgs ...any) {
	t.Helper()
	if wt, ok := want.(time.Time); ok {
		gt, ok := got.(time.Time)
		require.True(t, ok, append([]any{"want a time.Time, got %T"}, got)...)
		require.True(t, wt.Equal(gt), "%v: want %s, got %s", msgAndArgs, wt, gt.UTC())
		return
	}
	require.Equal(t, want, got, msgAndArgs...)
}

// TestColumnTypesAndNulls: every column of the four DPS tables (uuid,
// bigint, int, varchar, text, date, timestamp, boolean) arrives with the
// value written, timestamps converted from Europe/London to UTC (winter,
// summer and both sides of the clocks going back), and NULL in every nullable
// column arrives as null; from the snapshot (op r) and from the stream (op c).
func TestColumnTypesAndNulls(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tables := []string{"alert_type", "alert_code", "alert", "audit_event"}
	nullable := map[string]map[string]bool{}
	for _, table := range tables {
		rows, err := h.db.Pool.Query(context.Background(),
			"SELECT column_name, is_nullable = 'YES' FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1", table)
		require.NoError(t, err)
		nullable[table] = map[string]bool{}
		for rows.Next() {
			var name string
			var null bool
			require.NoError(t, rows.Scan(&name, &null))
			nullable[table][name] = null
		}
		require.NoError(t, rows.Err())
		spec := columnSpecs(0)[table]
		require.Len(t, spec, len(nullable[table]), "the test covers every column of %s", table)
		for col := range nullable[table] {
			require.Contains(t, spec, col, "the test covers column %s.%s", table, col)
		}
	}
	variants := []struct {
		name   string
		k      int
		nulls  bool
		stream bool
	}{
		{"snapshot, every column set", 1, false, false},
		{"snapshot, nullable columns null", 2, true, false},
		{"stream, every column set", 3, false, true},
		{"stream, nullable columns null", 4, true, true},
	}
	insert := func(k int, nulls bool) {
		specs := columnSpecs(k)
		for _, table := range tables {
			var cols, vals []string
			for col, s := range specs[table] {
				cols = append(cols, col)
				if nulls && nullable[table][col] {
					vals = append(vals, "NULL")
				} else {
					vals = append(vals, s.sql)
				}
			}
			h.db.Exec(t, fmt.Sprintf("INSERT INTO %s (%s) VALUES (%s)", table, strings.Join(cols, ", "), strings.Join(vals, ", ")))
		}
	}
	for _, v := range variants {
		if !v.stream {
			insert(v.k, v.nulls)
		}
	}
	r := h.start(t)
	h.waitRunning(t, r)
	for _, v := range variants {
		if v.stream {
			insert(v.k, v.nulls)
		}
	}
	h.waitCaughtUp(t, 30*time.Second)
	var topics []string
	for _, table := range tables {
		topics = append(topics, h.topic(table))
	}
	got := map[string]map[string][]rec{} // table → key → records
	for _, x := range h.consumeAll(t, topics...) {
		table, _ := x.source()["table"].(string)
		if got[table] == nil {
			got[table] = map[string][]rec{}
		}
		got[table][x.keyID()] = append(got[table][x.keyID()], x)
	}

	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			specs := columnSpecs(v.k)
			for _, table := range tables {
				key := fmt.Sprint(specs[table]["id"].want)
				recs := got[table][key]
				require.Len(t, recs, 1, "%s %s", table, key)
				x := recs[0]
				wantOp := "r"
				if v.stream {
					wantOp = "c"
				}
				require.Equal(t, wantOp, x.op(), "%s %s", table, key)
				row := x.row("after")
				require.Len(t, row, len(specs[table]), "%s: one field per column", table)
				for col, s := range specs[table] {
					want := s.want
					if v.nulls && nullable[table][col] {
						want = nil
					}
					raw, ok := row[col]
					require.True(t, ok, "%s.%s in the record", table, col)
					if want != nil && nullable[table][col] {
						u, isUnion := raw.(map[string]any)
						require.True(t, isUnion && len(u) == 1, "%s.%s: a nullable column is a union, got %T", table, col, raw)
					}
					requireValue(t, want, x.field("after", col), "%s.%s", table, col)
				}
			}
		})
	}
}

// TestPrimaryKeyChange: an update that changes the primary key is published
// as a delete (and tombstone) of the old key and a create of the new one, so
// that a compacted topic keeps no row under the old key.
func TestPrimaryKeyChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	typeID := pgtest.QueryValue[int64](t, h.db, "SELECT id FROM alert_type WHERE code = 'X'")
	h.db.Exec(t, fmt.Sprintf(`INSERT INTO alert_code (id, alert_type_id, code, description, created_by) VALUES (900001, %d, 'ZZ1', 'Test code', 'T')`, typeID))
	h.db.Exec(t, "UPDATE alert_code SET id = 900002 WHERE id = 900001")
	seeded := pgtest.QueryValue[int](t, h.db, "SELECT count(*) FROM alert_code WHERE id < 900000")
	recs := h.consume(t, seeded+4, 30*time.Second, h.topic("alert_code"))
	require.Len(t, recs, seeded+4)
	ops := []string{}
	for _, x := range recs {
		id, _ := schemas.Get[int64](x.Key, "id")
		if id < 900000 {
			continue
		}
		op := "tombstone"
		if x.Value != nil {
			op = x.op()
		}
		ops = append(ops, fmt.Sprintf("%s:%d", op, id))
	}
	require.ElementsMatch(t, []string{"c:900001", "d:900001", "tombstone:900001", "c:900002"}, ops)
}

// TestAlertUser: an alert record carries, in its alertsync-actioned-by
// header, the actioned_by of the audit event its transaction wrote for that
// alert, whether the audit event comes after the alert row or before it; an
// alert change without one carries no header and is counted.
func TestAlertUser(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(t)
	h.waitRunning(t, r)
	xa := alertCodeID(t, h.db, "XA")
	const a1, a2 = "0190a3f4-0000-7000-8000-0000000000a1", "0190a3f4-0000-7000-8000-0000000000a2"
	audit := func(id, alert, user string) string {
		return fmt.Sprintf(`INSERT INTO audit_event (id, alert_id, action, description, actioned_at, actioned_by, actioned_by_display_name, source)
			VALUES ('%s', '%s', 'CREATED', 'x', '2024-06-01 12:00:00', '%s', 'Someone', 'DPS')`, id, alert, user)
	}
	insert := func(id string) string {
		return fmt.Sprintf(`INSERT INTO alert (id, alert_code_id, prison_number, active_from, created_at, version)
			VALUES ('%s', %d, 'B2222BB', '2024-01-02', '2024-06-01 12:00:00', 1)`, id, xa)
	}
	h.db.Exec(t, "BEGIN; "+insert(a1)+"; "+audit("0190a3f4-0000-7000-9000-0000000000b1", a1, "JSMITH_GEN")+"; "+
		insert(a2)+"; "+audit("0190a3f4-0000-7000-9000-0000000000b2", a2, "KJONES_GEN")+"; COMMIT")
	h.db.Exec(t, "BEGIN; "+audit("0190a3f4-0000-7000-9000-0000000000b3", a1, "AUSER_GEN")+
		fmt.Sprintf("; UPDATE alert SET description = 'v2', version = 2 WHERE id = '%s'; COMMIT", a1))
	h.db.Exec(t, fmt.Sprintf("UPDATE alert SET description = 'v3', version = 3 WHERE id = '%s'", a2))
	recs := h.consume(t, 4, 30*time.Second, h.topic("alert"))
	require.Len(t, recs, 4)
	got := map[string][]string{}
	for _, rc := range recs {
		got[rc.keyID()] = append(got[rc.keyID()], rc.op()+" "+rc.Headers[schemas.HeaderActionedBy])
	}
	require.Equal(t, map[string][]string{a1: {"c JSMITH_GEN", "u AUSER_GEN"}, a2: {"c KJONES_GEN", "u "}}, got)
	h.waitCaughtUp(t, 20*time.Second)
	m := h.metric(t, "alertsync_capture_dps_records_without_user_total", nil)
	require.NotNil(t, m)
	require.Equal(t, 1.0, m.GetCounter().GetValue())
}
