package schemas

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// countingRegistry is an in-memory registry (srfake behind a real sr.Client)
// that counts the HTTP requests it serves, by method and path.
type countingRegistry struct {
	fake   *srfake.Registry
	client *sr.Client
	mu     sync.Mutex
	calls  map[string]int
}

func newCountingRegistry(t testing.TB) *countingRegistry {
	t.Helper()
	r := &countingRegistry{fake: srfake.New(), calls: make(map[string]int)}
	t.Cleanup(r.fake.Close)
	r.fake.Intercept(func(_ http.ResponseWriter, req *http.Request) bool {
		r.mu.Lock()
		r.calls[req.Method+" "+req.URL.Path]++
		r.mu.Unlock()
		return false
	})
	cl, err := sr.NewClient(sr.URLs(r.fake.URL()))
	require.NoError(t, err)
	r.client = cl
	return r
}

func (r *countingRegistry) count(method, path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[method+" "+path]
}

func (r *countingRegistry) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.calls {
		n += c
	}
	return n
}

// bindAll binds every topic of the package, in table order, so that schema
// ids are stable: 1 and 2 for the first topic's key and value, and so on
// (the command topics share theirs).
func bindAll(t testing.TB, c *Codec) map[string]*TopicCodec {
	t.Helper()
	out := make(map[string]*TopicCodec)
	for _, tp := range Topics() {
		tc, err := c.Bind(context.Background(), tp.Name)
		require.NoError(t, err, "binding %s", tp.Name)
		out[tp.Name] = tc
	}
	return out
}

func encoderFor(tc *TopicCodec, p Part) *Encoder {
	if p == PartKey {
		return tc.Key
	}
	return tc.Value
}

func subjectOf(topic string, p Part) Subject {
	t, _ := LookupTopic(topic)
	if p == PartKey {
		return t.Key
	}
	return t.Value
}

// parseSchema parses schema text with hamba/avro in a private cache, so that
// two versions of one named type never meet.
func parseSchema(t testing.TB, text string) avro.Schema {
	t.Helper()
	s, err := avro.ParseWithCache(text, "", &avro.SchemaCache{})
	require.NoError(t, err)
	return s
}

// normalize turns a goavro native value (as built for encoding or as
// decoded) into a tagged, JSON-shaped tree, guided by the schema: dates
// become {"$date": "YYYY-MM-DD"}, timestamps {"$ts": micros}, uuids
// {"$uuid": "..."}, bytes {"$bytes": hex}; unions lose their wrapper. The
// Python side (testdata/fastavro_decode.py) produces the same shape, so the
// two compare field by field.
func normalize(s avro.Schema, v any) (any, error) {
	switch s.Type() {
	case avro.Ref:
		return normalize(s.(*avro.RefSchema).Schema(), v)
	case avro.Null:
		if v != nil {
			return nil, fmt.Errorf("null schema, value %T", v)
		}
		return nil, nil
	case avro.Boolean:
		b, ok := v.(bool)
		if !ok {
			return nil, fmt.Errorf("boolean schema, value %T", v)
		}
		return b, nil
	case avro.Int, avro.Long:
		if ls := logicalOf(s); ls != "" {
			switch ls {
			case avro.Date:
				switch d := v.(type) {
				case time.Time:
					return map[string]any{"$date": d.UTC().Format("2006-01-02")}, nil
				case int32:
					return map[string]any{"$date": time.Unix(int64(d)*86400, 0).UTC().Format("2006-01-02")}, nil
				}
				return nil, fmt.Errorf("date schema, value %T", v)
			case avro.TimestampMicros:
				switch ts := v.(type) {
				case time.Time:
					return map[string]any{"$ts": json.Number(strconv.FormatInt(ts.UnixMicro(), 10))}, nil
				case int64:
					return map[string]any{"$ts": json.Number(strconv.FormatInt(ts, 10))}, nil
				}
				return nil, fmt.Errorf("timestamp-micros schema, value %T", v)
			}
		}
		switch n := v.(type) {
		case int32:
			return json.Number(strconv.FormatInt(int64(n), 10)), nil
		case int64:
			return json.Number(strconv.FormatInt(n, 10)), nil
		case int:
			return json.Number(strconv.Itoa(n)), nil
		}
		return nil, fmt.Errorf("%s schema, value %T", s.Type(), v)
	case avro.String:
		str, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("string schema, value %T", v)
		}
		if logicalOf(s) == avro.UUID {
			u, err := uuid.Parse(str)
			if err != nil {
				return nil, fmt.Errorf("uuid schema: %w", err)
			}
			return map[string]any{"$uuid": u.String()}, nil
		}
		return str, nil
	case avro.Bytes:
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("bytes schema, value %T", v)
		}
		return map[string]any{"$bytes": hex.EncodeToString(b)}, nil
	case avro.Enum:
		sym, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("enum schema, value %T", v)
		}
		return sym, nil
	case avro.Array:
		arr, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("array schema, value %T", v)
		}
		out := make([]any, len(arr))
		for i, item := range arr {
			n, err := normalize(s.(*avro.ArraySchema).Items(), item)
			if err != nil {
				return nil, fmt.Errorf("[%d]: %w", i, err)
			}
			out[i] = n
		}
		return out, nil
	case avro.Record:
		rec, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record schema, value %T", v)
		}
		out := make(map[string]any, len(rec))
		for _, f := range s.(*avro.RecordSchema).Fields() {
			fv, ok := rec[f.Name()]
			if !ok {
				return nil, fmt.Errorf("field %s missing", f.Name())
			}
			n, err := normalize(f.Type(), fv)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", f.Name(), err)
			}
			out[f.Name()] = n
		}
		if len(rec) != len(out) {
			return nil, fmt.Errorf("record %s has fields the schema lacks", s.(*avro.RecordSchema).FullName())
		}
		return out, nil
	case avro.Union:
		if v == nil {
			if !s.(*avro.UnionSchema).Nullable() {
				return nil, fmt.Errorf("null value for a union without null")
			}
			return nil, nil
		}
		w, ok := v.(map[string]any)
		if !ok || len(w) != 1 {
			return nil, fmt.Errorf("union value %T is not wrapped", v)
		}
		for branch, inner := range w {
			for _, m := range s.(*avro.UnionSchema).Types() {
				if goavroBranch(m) == branch {
					return normalize(m, inner)
				}
			}
			return nil, fmt.Errorf("union has no member %q", branch)
		}
	}
	return nil, fmt.Errorf("unsupported schema type %s", s.Type())
}

func logicalOf(s avro.Schema) avro.LogicalType {
	p, ok := s.(*avro.PrimitiveSchema)
	if !ok || p.Logical() == nil {
		return ""
	}
	return p.Logical().Type()
}

// goavroBranch is the name goavro gives union member m.
func goavroBranch(m avro.Schema) string {
	switch x := m.(type) {
	case *avro.RefSchema:
		return x.Schema().FullName()
	case avro.NamedSchema:
		return x.FullName()
	case *avro.PrimitiveSchema:
		switch lt := logicalOf(x); lt {
		case avro.Date, avro.TimestampMicros, avro.TimestampMillis, avro.TimeMicros, avro.TimeMillis:
			return string(x.Type()) + "." + string(lt)
		}
		return string(x.Type())
	}
	return string(m.Type())
}

// jsonTree round-trips v through JSON with exact numbers.
func jsonTree(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return decodeJSONTree(t, b)
}

func decodeJSONTree(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out any
	require.NoError(t, dec.Decode(&out))
	return out
}

// diffTrees lists, by path, every place where two JSON-shaped trees differ.
func diffTrees(path string, want, got any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: want object, got %v", path, got)}
		}
		keys := make([]string, 0, len(w)+len(g))
		for k := range w {
			keys = append(keys, k)
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		var out []string
		for _, k := range keys {
			wv, wok := w[k]
			gv, gok := g[k]
			switch {
			case !wok:
				out = append(out, fmt.Sprintf("%s.%s: unexpected %v", path, k, gv))
			case !gok:
				out = append(out, fmt.Sprintf("%s.%s: missing, want %v", path, k, wv))
			default:
				out = append(out, diffTrees(path+"."+k, wv, gv)...)
			}
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: want %d items, got %v", path, len(w), got)}
		}
		var out []string
		for i := range w {
			out = append(out, diffTrees(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return out
	default:
		if !reflect.DeepEqual(want, got) {
			return []string{fmt.Sprintf("%s: want %v (%T), got %v (%T)", path, want, want, got, got)}
		}
		return nil
	}
}

func requireSameTree(t testing.TB, want, got any) {
	t.Helper()
	if d := diffTrees("$", want, got); len(d) > 0 {
		t.Fatalf("trees differ:\n%s", strings.Join(d, "\n"))
	}
}
