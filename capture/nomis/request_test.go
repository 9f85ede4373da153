package nomis

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
)

func TestResyncRequestCheck(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		req  ResyncRequest
		want string // "" = valid
	}{
		{"by prison number", ResyncRequest{OffenderNo: "A1234BC", Reason: ReasonRedrive}, ""},
		{"by offender id", ResyncRequest{OffenderID: 7, Reason: ReasonRedrive}, ""},
		{"by booking", ResyncRequest{BookID: 70, Reason: ReasonRedrive}, ""},
		{"another snapshot reason", ResyncRequest{BookID: 70, Reason: ReasonMerge}, ""},
		{"no prisoner", ResyncRequest{Reason: ReasonRedrive}, "names no prisoner"},
		{"negative booking", ResyncRequest{BookID: -1, Reason: ReasonRedrive}, "names no prisoner"},
		{"negative offender with a number", ResyncRequest{OffenderNo: "A1", OffenderID: -1, Reason: ReasonRedrive}, "must be positive"},
		{"not a prison number", ResyncRequest{OffenderNo: "a1234bc; --", Reason: ReasonRedrive}, "not a prison number"},
		{"prison number too long", ResyncRequest{OffenderNo: "A1234567890", Reason: ReasonRedrive}, "not a prison number"},
		{"no reason", ResyncRequest{BookID: 70}, "reason must be"},
		{"unknown reason", ResyncRequest{BookID: 70, Reason: "BECAUSE"}, "reason must be"},
		{"the capture's own reason", ResyncRequest{BookID: 70, Reason: ReasonInitialLoad}, "reason must be"},
		{"the enum default", ResyncRequest{BookID: 70, Reason: "UNKNOWN"}, "reason must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.req.Check()
			_, ierr := tt.req.Image()
			if tt.want == "" {
				require.NoError(t, err)
				require.NoError(t, ierr)
				return
			}
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, ierr, tt.want, "Image checks too")
		})
	}
}

// TestDecodeRequest: the journal row Image writes decodes to the request;
// rows that are not a request go to the DLQ with a reason naming no value.
func TestDecodeRequest(t *testing.T) {
	t.Parallel()
	b := &builder{}
	img, err := ResyncRequest{BookID: 70, Reason: ReasonRedrive}.Image()
	require.NoError(t, err)
	require.JSONEq(t, `{"offender_book_id": 70, "reason": "REDRIVE"}`, string(img), "only what is set")
	ch, err := b.decode(&JournalRow{ID: 1, Table: TableResyncRequest, Operation: "I", New: img})
	require.NoError(t, err)
	require.Equal(t, &ResyncRequest{BookID: 70, Reason: ReasonRedrive}, ch.request)
	require.Nil(t, b.records(ch, nil), "a request publishes nothing")
	require.Equal(t, []AlertKey{{BookID: 70}}, ch.alertKeys(), "the booking's context names the prisoner")
	no := "B2345CD"
	require.Equal(t, []resyncTrigger{{offenderNo: no, reason: ReasonRedrive}},
		ch.resyncTriggers(map[AlertKey]AlertContext{{BookID: 70}: {OffenderNo: &no}}))
	require.Empty(t, ch.resyncTriggers(map[AlertKey]AlertContext{{BookID: 70}: {}}), "a booking no offender has")

	byNo, err := b.decode(&JournalRow{Table: TableResyncRequest, Operation: "I", New: []byte(`{"offender_id_display": "A1234BC", "offender_book_id": 70, "reason": "REDRIVE"}`)})
	require.NoError(t, err)
	require.Empty(t, byNo.alertKeys(), "a prison number needs no lookup")
	require.Equal(t, []resyncTrigger{{offenderNo: "A1234BC", reason: ReasonRedrive}}, byNo.resyncTriggers(nil))
	byID, err := b.decode(&JournalRow{Table: TableResyncRequest, Operation: "I", New: []byte(`{"offender_id": 7, "reason": "REDRIVE"}`)})
	require.NoError(t, err)
	require.Equal(t, []resyncTrigger{{offenderID: 7, reason: ReasonRedrive}}, byID.resyncTriggers(nil))

	for _, tt := range []struct {
		name      string
		row       JournalRow
		kind, msg string
	}{
		{"an update", JournalRow{Operation: "U", Old: img, New: img}, KindOperation, "must be an insert"},
		{"a delete", JournalRow{Operation: "D", Old: img}, KindOperation, "must be an insert"},
		{"no image", JournalRow{Operation: "I"}, KindOperation, "must be an insert"},
		{"not JSON", JournalRow{Operation: "I", New: []byte(`SECRET`)}, KindMalformed, "not a resync request object"},
		{"a field it does not know", JournalRow{Operation: "I", New: []byte(`{"offender_book_id": 70, "reason": "REDRIVE", "note": "SECRET"}`)}, KindMalformed, "not a resync request object"},
		{"a string id", JournalRow{Operation: "I", New: []byte(`{"offender_book_id": "SECRET", "reason": "REDRIVE"}`)}, KindMalformed, "not a resync request object"},
		{"no prisoner", JournalRow{Operation: "I", New: []byte(`{"reason": "REDRIVE"}`)}, KindBadValue, "resync request names no prisoner"},
		{"a bad reason", JournalRow{Operation: "I", New: []byte(`{"offender_id": 7, "reason": "SECRET"}`)}, KindBadValue, "reason must be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.row.Table = TableResyncRequest
			_, err := b.decode(&tt.row)
			var rerr *RowError
			require.ErrorAs(t, err, &rerr)
			require.Equal(t, tt.kind, rerr.Kind)
			require.Contains(t, rerr.Error(), tt.msg)
			require.NotContains(t, rerr.Error(), "SECRET")
		})
	}
}

// TestRequestMigrationsNameTheTable: the functions the dialects call
// (RequestResyncs) write the journal rows the capture reads as requests.
func TestRequestMigrationsNameTheTable(t *testing.T) {
	t.Parallel()
	pg, err := fs.ReadFile(deploy.NOMISMigrations(), "0013_resync_requests.sql")
	require.NoError(t, err)
	ora, err := fs.ReadFile(deploy.OracleMigrations(), "0010_resync_requests.sql")
	require.NoError(t, err)
	for _, m := range []string{string(pg), string(ora)} {
		require.Contains(t, m, "'"+TableResyncRequest+"', 'I', NULL")
		require.Equal(t, 1, strings.Count(strings.ToUpper(m), "INSERT INTO"), "it writes nothing else")
	}
	require.Contains(t, pgRequestResyncs, "alertsync.alertsync_request_resyncs(")
	require.Contains(t, oraRequestResyncsSQL, "OMS_OWNER.ALERTSYNC_REQUEST_RESYNCS(")
}
