package nomis

import (
	"errors"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

// FuzzImage feeds arbitrary bytes to the journal image decoder of
// offender_alerts: it never panics, an error is a *RowError that does not
// quote the input, and a row it accepts fits the topic's Avro schema.
func FuzzImage(f *testing.F) {
	for _, seed := range []string{
		alertJSON, `{}`, `null`, `[]`, `"x"`, `{"alert_seq": 1e3}`, `{"alert_date": "2024-03-31T01:30:00"}`,
		`{"offender_book_id": -9223372036854775808, "alert_seq": -2147483648}`, `{"comment_text": "\ud800"}`,
		`{"alert_date":"2024-06-02T00:00:00","offender_book_id":1,"alert_seq":1,"alert_type":"X","alert_code":"XA","alert_status":"A","verified_flag":"N","create_datetime":"2024-06-02T00:00:00","create_user_id":"U"}`,
	} {
		f.Add([]byte(seed))
	}
	tables, err := loadTables()
	require.NoError(f, err)
	alerts := tables[TableOffenderAlerts]
	loc, err := time.LoadLocation("Europe/London")
	require.NoError(f, err)
	tp, _ := schemas.LookupTopic(schemas.TopicNOMISOffenderAlerts)
	codec, err := goavro.NewCodec(tp.Value.Schema)
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, data []byte) {
		rec, err := alerts.image("new_row", data, loc)
		if err != nil {
			var re *RowError
			require.True(t, errors.As(err, &re), "%T", err)
			if len(data) >= 16 {
				require.NotContains(t, err.Error(), string(data))
			}
			return
		}
		_, err = codec.BinaryFromNative(nil, map[string]any{
			"before": nil, "after": schemas.OptRecord(alerts.rowType, alerts.native(rec)), "op": "c", "ts_ms": int64(0),
			"source": map[string]any{"version": "", "connector": "", "name": "", "ts_ms": int64(0), "snapshot": "false", "db": "",
				"schema": "", "table": "", "txId": nil, "position": map[string]any{"commit": int64(0), "change": int64(0)},
				"lsn": nil, "origin": nil, "sync": false},
			"session": nil, "context": nil,
		})
		require.NoError(t, err)
	})
}
