package transform

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/transform/decode"
	"github.com/alertsync/alertsync/transform/rules"
)

// The decoders of the consumed topics: the generic path decodes with the
// schema the record names (goavro, any registered version) and reads the
// natives with package decode.

func (t *Transformer) natives(ctx context.Context, rec *kgo.Record) (key, value any, err error) {
	if key, err = t.codec.DecodeKey(ctx, rec); err != nil {
		return nil, nil, err
	}
	if value, err = t.codec.DecodeValue(ctx, rec); err != nil {
		return nil, nil, err
	}
	return key, value, nil
}

func (t *Transformer) decodeNOMISAlert(ctx context.Context, rec *kgo.Record) (rules.NOMISAlertChange, error) {
	k, v, err := t.natives(ctx, rec)
	if err != nil {
		return rules.NOMISAlertChange{}, err
	}
	return decode.NOMISAlert(k, v)
}

func (t *Transformer) decodeNOMISSnapshot(ctx context.Context, rec *kgo.Record) (rules.NOMISSnapshot, error) {
	k, v, err := t.natives(ctx, rec)
	if err != nil {
		return rules.NOMISSnapshot{}, err
	}
	return decode.NOMISSnapshot(k, v)
}

func (t *Transformer) decodeDPSAlert(ctx context.Context, rec *kgo.Record) (rules.DPSAlertChange, error) {
	k, v, err := t.natives(ctx, rec)
	if err != nil {
		return rules.DPSAlertChange{}, err
	}
	return decode.DPSAlert(k, v)
}
