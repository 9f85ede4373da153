package decode

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/schemas"
)

// FuzzDecoders: whatever shape a record has — Avro bytes decoded under the
// registered schemas, or arbitrary JSON standing in for a record of the
// wrong shape — the decoders return a value, ErrTombstone or an *Error;
// they never panic.
func FuzzDecoders(f *testing.F) {
	for _, seed := range []string{
		`{"key":{"offender_book_id":1,"alert_seq":1},"value":{"op":"c","after":{"x":1}}}`,
		`{"key":{"offender_no":"A1234BC"},"value":{"offender_no":"A1234BC","alerts":[{"row":null}]}}`,
		`{"key":{"id":"x"},"value":{"op":"u","before":null,"after":{"alert_code_id":"7"}}}`,
		`{"value":null}`, `[]`, "\x02\x00\x10",
	} {
		f.Add([]byte(seed))
	}
	type codecPair struct{ key, value *goavro.Codec }
	var codecs []codecPair
	for _, topic := range []string{schemas.TopicNOMISOffenderAlerts, schemas.TopicNOMISPrisonerAlerts, schemas.TopicDPSAlert} {
		tp, ok := schemas.LookupTopic(topic)
		require.True(f, ok)
		k, err := goavro.NewCodec(tp.Key.Schema)
		require.NoError(f, err)
		v, err := goavro.NewCodec(tp.Value.Schema)
		require.NoError(f, err)
		codecs = append(codecs, codecPair{k, v})
	}
	check := func(t *testing.T, key, value any) {
		for _, decode := range []func(key, value any) error{
			func(k, v any) error { _, err := NOMISAlert(k, v); return err },
			func(k, v any) error { _, err := NOMISSnapshot(k, v); return err },
			func(k, v any) error { _, err := DPSAlert(k, v); return err },
		} {
			err := decode(key, value)
			if err == nil || errors.Is(err, ErrTombstone) {
				continue
			}
			var de *Error
			require.True(t, errors.As(err, &de), "want *Error, got %T: %v", err, err)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var rec struct {
			Key   any `json:"key"`
			Value any `json:"value"`
		}
		if json.Unmarshal(data, &rec) == nil {
			check(t, rec.Key, rec.Value)
		}
		for _, c := range codecs {
			if v, _, err := c.value.NativeFromBinary(data); err == nil {
				k, _, _ := c.key.NativeFromBinary(data)
				check(t, k, v)
			}
		}
	})
}
