package schemas

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sr"
)

func TestCodecRoundTrip(t *testing.T) {
	t.Parallel()
	reg := newCodingRegistryWithBinds(t)
	// A second codec on the same registry has nothing cached: it decodes by
	// fetching the writer schema from the registry.
	reader := New(reg.registry.client)

	for _, s := range samples() {
		t.Run(s.name, func(t *testing.T) {
			enc := encoderFor(reg.topics[s.topic], s.part)
			subject := subjectOf(s.topic, s.part)
			registered, ok := reg.registry.fake.GetSchema(subject.Name, 1)
			require.True(t, ok, "subject %s registered", subject.Name)
			require.Equal(t, registered.ID, enc.ID())

			prefix := []byte("existing")
			out, err := enc.Append(prefix, s.native)
			require.NoError(t, err)
			require.Equal(t, "existing", string(out[:len(prefix)]), "Append keeps the caller's bytes")
			wire := out[len(prefix):]
			require.Greater(t, len(wire), 5)
			assert.Equal(t, byte(0), wire[0], "magic byte")
			assert.Equal(t, uint32(registered.ID), binary.BigEndian.Uint32(wire[1:5]), "schema id, big endian")

			loc := Location{Topic: s.topic, Partition: 1, Offset: 2, Part: s.part}
			got, err := reader.Decode(context.Background(), wire, loc)
			require.NoError(t, err)

			sch := parseSchema(t, subject.Schema)
			want, err := normalize(sch, s.native)
			require.NoError(t, err, "normalizing the input")
			have, err := normalize(sch, got)
			require.NoError(t, err, "normalizing the decoded value")
			requireSameTree(t, jsonTree(t, want), jsonTree(t, have))
		})
	}
}

type boundRegistry struct {
	registry *countingRegistry
	codec    *Codec
	topics   map[string]*TopicCodec
}

func newCodingRegistryWithBinds(t testing.TB) boundRegistry {
	t.Helper()
	reg := newCountingRegistry(t)
	c := New(reg.client)
	return boundRegistry{registry: reg, codec: c, topics: bindAll(t, c)}
}

func TestBindSetsCompatibilityAndIsIdempotent(t *testing.T) {
	t.Parallel()
	reg := newCountingRegistry(t)
	first := bindAll(t, New(reg.client))
	again := bindAll(t, New(reg.client)) // a restart

	ctx := context.Background()
	for _, tp := range Topics() {
		for _, s := range []Subject{tp.Key, tp.Value} {
			res := reg.client.Compatibility(ctx, s.Name)
			require.Len(t, res, 1)
			require.NoError(t, res[0].Err)
			assert.Equal(t, tp.Compatibility, res[0].Level, "compatibility of %s", s.Name)
			versions, err := reg.client.SubjectVersions(ctx, s.Name)
			require.NoError(t, err)
			assert.Equal(t, []int{1}, versions, "a second Bind registers no new version of %s", s.Name)
		}
		assert.Equal(t, first[tp.Name].Key.ID(), again[tp.Name].Key.ID())
		assert.Equal(t, first[tp.Name].Value.ID(), again[tp.Name].Value.ID())
	}
	assert.Equal(t, first[TopicCommandsDPS].Value.ID(), first[TopicCommandsNOMIS].Value.ID(),
		"both command topics carry the same schema, so the registry gives it one id")
}

func TestBindWithoutCompatibilityConfig(t *testing.T) {
	t.Parallel()
	reg := newCountingRegistry(t)
	_, err := New(reg.client, WithoutCompatibilityConfig()).Bind(context.Background(), TopicDLQ)
	require.NoError(t, err)
	assert.Zero(t, reg.count(http.MethodPut, "/config/"+ValueSubject(TopicDLQ)))
}

func TestBindWithTopicPrefix(t *testing.T) {
	t.Parallel()
	reg := newCountingRegistry(t)
	tc, err := New(reg.client, WithTopicPrefix("staging.")).Bind(context.Background(), TopicOutcomes)
	require.NoError(t, err)
	assert.Equal(t, "staging.alertsync.outcomes", tc.Topic)
	assert.Equal(t, "staging.alertsync.outcomes-value", tc.Value.Subject())
	assert.True(t, reg.fake.SubjectExists("staging.alertsync.outcomes-key"))
	assert.False(t, reg.fake.SubjectExists("alertsync.outcomes-key"))
}

func TestBindErrors(t *testing.T) {
	t.Parallel()
	t.Run("unknown topic", func(t *testing.T) {
		t.Parallel()
		reg := newCountingRegistry(t)
		_, err := New(reg.client).Bind(context.Background(), "nope")
		require.ErrorIs(t, err, ErrUnknownTopic)
	})
	t.Run("incompatible schema", func(t *testing.T) {
		t.Parallel()
		reg := newCountingRegistry(t)
		// srfake accepts anything; answer as a real registry does for a
		// schema that breaks the subject's compatibility level.
		reg.fake.Intercept(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodPost {
				return false
			}
			w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(sr.ResponseError{ErrorCode: 409, Message: "Schema being registered is incompatible with an earlier schema"})
			return true
		})
		_, err := New(reg.client).Bind(context.Background(), TopicCommandsDPS)
		require.ErrorIs(t, err, ErrIncompatibleSchema)
		var re *sr.ResponseError
		require.ErrorAs(t, err, &re, "the registry's own error stays reachable")
		assert.Contains(t, err.Error(), `subject "alertsync.commands.dps-key"`)
	})
}

func TestEncodeError(t *testing.T) {
	t.Parallel()
	b := newCodingRegistryWithBinds(t)
	enc := b.topics[TopicDPSAlert].Key
	dst := []byte{1, 2, 3}
	out, err := enc.Append(dst, map[string]any{"id": 12})
	var ee *EncodeError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, KeySubject(TopicDPSAlert), ee.Subject)
	assert.Equal(t, []byte{1, 2, 3}, out, "dst unchanged on error")
}

func TestTopicCodecRecord(t *testing.T) {
	t.Parallel()
	b := newCodingRegistryWithBinds(t)
	tc := b.topics[TopicDPSAlert]
	key := map[string]any{"id": UUID(alertID)}

	tomb, err := tc.Record(key, nil)
	require.NoError(t, err)
	assert.Nil(t, tomb.Value, "nil value makes a tombstone")
	assert.Equal(t, TopicDPSAlert, tomb.Topic)

	var value any
	for _, s := range samples() {
		if s.name == "alert delete" {
			value = s.native
		}
	}
	rec, err := tc.Record(key, value)
	require.NoError(t, err)
	rec.Partition, rec.Offset = 3, 99

	k, err := b.codec.DecodeKey(context.Background(), rec)
	require.NoError(t, err)
	id, ok := Get[string](k.(map[string]any), "id")
	require.True(t, ok)
	assert.Equal(t, alertID.String(), id)

	v, err := b.codec.DecodeValue(context.Background(), rec)
	require.NoError(t, err)
	op, _ := Get[string](v.(map[string]any), "op")
	assert.Equal(t, "d", op)

	got, err := b.codec.DecodeValue(context.Background(), tomb)
	require.NoError(t, err)
	assert.Nil(t, got, "a tombstone decodes to nil")

	// Errors from the record helpers carry the record's coordinates.
	bad := &kgo.Record{Topic: TopicDPSAlert, Partition: 4, Offset: 77, Key: []byte{9}}
	_, err = b.codec.DecodeKey(context.Background(), bad)
	var de *DecodeError
	require.ErrorAs(t, err, &de)
	assert.Equal(t, Location{Topic: TopicDPSAlert, Partition: 4, Offset: 77, Part: PartKey}, de.Location)
	assert.Contains(t, err.Error(), "dps.public.alert[4]@77/key")
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	b := newCodingRegistryWithBinds(t)
	valid, err := b.topics[TopicDPSAlert].Key.Append(nil, map[string]any{"id": UUID(alertID)})
	require.NoError(t, err)
	id := b.topics[TopicDPSAlert].Key.ID()

	header := func(id uint32) []byte {
		h := []byte{0, 0, 0, 0, 0}
		binary.BigEndian.PutUint32(h[1:], id)
		return h
	}
	tests := []struct {
		name      string
		data      []byte
		want      error
		wantID    int
		permanent bool
	}{
		{"unknown magic byte", append([]byte{1}, valid[1:]...), ErrUnknownMagic, 0, true},
		{"json payload", []byte(`{"id":"x"}`), ErrUnknownMagic, 0, true},
		{"header cut short", []byte{0, 0, 0}, ErrTruncated, 0, true},
		{"unknown schema id", append(header(424242), valid[5:]...), ErrUnknownSchemaID, 424242, true},
		{"body cut short", valid[:len(valid)-3], ErrMalformed, id, true},
		{"trailing bytes", append(append([]byte{}, valid...), 0x00), ErrMalformed, id, true},
		{"negative string length", append(header(uint32(id)), 0x03), ErrMalformed, id, true},
		{"header only", header(uint32(id)), ErrMalformed, id, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			loc := Location{Topic: TopicDPSAlert, Partition: 2, Offset: 1234, Part: PartKey}
			v, err := b.codec.Decode(context.Background(), tt.data, loc)
			require.Error(t, err)
			assert.Nil(t, v)
			require.ErrorIs(t, err, tt.want)
			var de *DecodeError
			require.ErrorAs(t, err, &de)
			assert.Equal(t, loc, de.Location)
			assert.Equal(t, tt.wantID, de.SchemaID)
			assert.Equal(t, tt.permanent, de.Permanent())
		})
	}

	t.Run("array block too large to allocate", func(t *testing.T) {
		_, err := b.codec.Decode(context.Background(), hugeArrayPayload(t, b.topics[TopicCommandsDPS].Value), Location{})
		require.ErrorIs(t, err, ErrMalformed)
		assert.Contains(t, err.Error(), "MaxBlockCount")
	})

	t.Run("tombstone", func(t *testing.T) {
		v, err := b.codec.Decode(context.Background(), nil, Location{Topic: TopicDPSAlert})
		require.NoError(t, err)
		assert.Nil(t, v)
	})

	t.Run("registry unreachable is not permanent", func(t *testing.T) {
		reg := newCountingRegistry(t)
		reg.fake.Close()
		_, err := New(reg.client).Decode(context.Background(), valid, Location{Topic: TopicDPSAlert})
		var de *DecodeError
		require.ErrorAs(t, err, &de)
		assert.False(t, de.Permanent(), "retry, do not dead-letter: %v", err)
		assert.NotErrorIs(t, err, ErrUnknownSchemaID)
	})

	t.Run("registry returns a non-Avro schema", func(t *testing.T) {
		reg := newCountingRegistry(t)
		sid, _, err := reg.fake.RegisterSchema("other-value", sr.Schema{Schema: `{"type":"object"}`, Type: sr.TypeJSON})
		require.NoError(t, err)
		_, err = New(reg.client).Decode(context.Background(), append(header(uint32(sid)), 0), Location{})
		require.ErrorIs(t, err, ErrUnsupportedSchema)
	})
}

func TestSchemaIDsCached(t *testing.T) {
	t.Parallel()
	b := newCodingRegistryWithBinds(t)
	payloads := make([][]byte, 0, len(samples()))
	ids := make(map[int]bool)
	for _, s := range samples() {
		enc := encoderFor(b.topics[s.topic], s.part)
		p, err := enc.Append(nil, s.native)
		require.NoError(t, err)
		payloads = append(payloads, p)
		ids[enc.ID()] = true
	}

	t.Run("bind primes the cache", func(t *testing.T) {
		before := b.registry.total()
		for _, p := range payloads {
			_, err := b.codec.Decode(context.Background(), p, Location{})
			require.NoError(t, err)
		}
		assert.Equal(t, before, b.registry.total(), "no registry call for ids the codec registered")
	})

	t.Run("each unknown id fetched once under concurrency", func(t *testing.T) {
		c := New(b.registry.client)
		var wg sync.WaitGroup
		errs := make(chan error, 8*len(payloads)*5)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for round := 0; round < 5; round++ {
					for _, p := range payloads {
						if _, err := c.Decode(context.Background(), p, Location{}); err != nil {
							errs <- err
						}
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		for id := range ids {
			assert.Equal(t, 1, b.registry.count(http.MethodGet, fmt.Sprintf("/schemas/ids/%d", id)), "fetches of schema %d", id)
		}
	})

	t.Run("unknown ids are not cached as known", func(t *testing.T) {
		c := New(b.registry.client)
		p := []byte{0, 0, 0, 0x7f, 0x7f, 0}
		for i := 0; i < 2; i++ {
			_, err := c.Decode(context.Background(), p, Location{})
			require.True(t, errors.Is(err, ErrUnknownSchemaID), "%v", err)
		}
		assert.Equal(t, 2, b.registry.count(http.MethodGet, "/schemas/ids/32639"),
			"an id missing now may be registered later, so it is asked again")
	})
}
