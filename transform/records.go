package transform

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/schemas"

	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/rules"
)

// The decoders of the consumed topics. A record written with the current
// schema of its topic (the ids bound at start) is read straight from its
// Avro binary (decode.Fast*); any other registered version takes the
// generic path: goavro decodes it with the schema it names and package
// decode reads the natives. Both give the same result (differential tests
// and fuzzing in package decode).

// schemaIDs are the registry ids of a topic's current key and value schemas.
type schemaIDs struct{ key, value int }

// fastBodies returns the Avro bodies of rec when both its key and value
// were written with the current schemas of its topic.
func (t *Transformer) fastBodies(rec *kgo.Record) (key, value []byte, ok bool) {
	ids, bound := t.current[rec.Topic]
	if !bound {
		return nil, nil, false
	}
	kid, key, err := schemas.ParseHeader(rec.Key)
	if err != nil || kid != ids.key {
		return nil, nil, false
	}
	vid, value, err := schemas.ParseHeader(rec.Value)
	if err != nil || vid != ids.value {
		return nil, nil, false
	}
	t.fastN.Add(1)
	return key, value, true
}

func (t *Transformer) natives(ctx context.Context, rec *kgo.Record) (key, value any, err error) {
	t.genericN.Add(1)
	if key, err = t.codec.DecodeKey(ctx, rec); err != nil {
		return nil, nil, err
	}
	if value, err = t.codec.DecodeValue(ctx, rec); err != nil {
		return nil, nil, err
	}
	return key, value, nil
}

func (t *Transformer) decodeNOMISAlert(ctx context.Context, rec *kgo.Record) (rules.NOMISAlertChange, error) {
	if k, v, ok := t.fastBodies(rec); ok {
		return decode.FastNOMISAlert(k, v)
	}
	k, v, err := t.natives(ctx, rec)
	if err != nil {
		return rules.NOMISAlertChange{}, err
	}
	return decode.NOMISAlert(k, v)
}

func (t *Transformer) decodeNOMISSnapshot(ctx context.Context, rec *kgo.Record) (rules.NOMISSnapshot, error) {
	if k, v, ok := t.fastBodies(rec); ok {
		return decode.FastNOMISSnapshot(k, v)
	}
	k, v, err := t.natives(ctx, rec)
	if err != nil {
		return rules.NOMISSnapshot{}, err
	}
	return decode.NOMISSnapshot(k, v)
}

// decodeDPSAlert also reads the DPS user of the change from the record's
// schemas.HeaderActionedBy header (the capture joins it from the
// transaction's audit_event); without one the rules use their fallback.
func (t *Transformer) decodeDPSAlert(ctx context.Context, rec *kgo.Record) (rules.DPSAlertChange, error) {
	var (
		ch  rules.DPSAlertChange
		err error
	)
	if k, v, ok := t.fastBodies(rec); ok {
		ch, err = decode.FastDPSAlert(k, v)
	} else {
		var kn, vn any
		if kn, vn, err = t.natives(ctx, rec); err != nil {
			return ch, err
		}
		ch, err = decode.DPSAlert(kn, vn)
	}
	if err != nil {
		return ch, err
	}
	for i := range rec.Headers {
		if rec.Headers[i].Key == schemas.HeaderActionedBy && len(rec.Headers[i].Value) > 0 {
			user := string(rec.Headers[i].Value)
			ch.User = &user
		}
	}
	return ch, nil
}
