package schemas

import (
	"fmt"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/hamba/avro/v2"
	"github.com/linkedin/goavro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

func TestCatalog(t *testing.T) {
	t.Parallel()
	topics := Topics()
	require.Len(t, topics, len(topicTable))

	wantCompat := map[TopicKind]sr.CompatibilityLevel{
		KindChange:   sr.CompatBackward,
		KindSnapshot: sr.CompatBackward,
		KindCommand:  sr.CompatFull,
		KindDLQ:      sr.CompatFull,
		KindOutcome:  sr.CompatFull,
		KindState:    sr.CompatFull,
	}
	for _, tp := range topics {
		t.Run(tp.Name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tp.Name+"-key", tp.Key.Name)
			assert.Equal(t, tp.Name+"-value", tp.Value.Name)
			assert.Equal(t, wantCompat[tp.Kind], tp.Compatibility)
			got, ok := LookupTopic(tp.Name)
			require.True(t, ok)
			assert.Equal(t, tp, got)

			for _, s := range []Subject{tp.Key, tp.Value} {
				bySubject, ok := LookupSubject(s.Name)
				require.True(t, ok)
				assert.Equal(t, s, bySubject)
				assert.Equal(t, tp.Compatibility, s.Compatibility)

				_, err := goavro.NewCodec(s.Schema)
				require.NoError(t, err, "goavro compiles %s", s.Name)
				parsed := parseSchema(t, s.Schema)
				rec, ok := parsed.(*avro.RecordSchema)
				require.True(t, ok, "%s is a record", s.Name)
				assert.Equal(t, s.Type, rec.FullName())
				assertNullableDefaults(t, parsed, s.Name, map[string]bool{})
			}
			if tp.Kind == KindChange {
				env := parseSchema(t, tp.Value.Schema).(*avro.RecordSchema)
				// The Debezium envelope first; a side may add fields after it
				// (as Debezium adds "transaction"), each nullable with a
				// default so that Debezium readers can ignore them.
				names := fieldNames(env)
				require.GreaterOrEqual(t, len(names), 5)
				assert.Equal(t, []string{"before", "after", "source", "op", "ts_ms"}, names[:5], "Debezium envelope")
				for _, f := range env.Fields()[5:] {
					u, ok := f.Type().(*avro.UnionSchema)
					assert.True(t, ok && u.Nullable() && f.HasDefault(), "extra envelope field %s must be nullable with a default", f.Name())
				}
				before := env.Fields()[0].Type().(*avro.UnionSchema).Types()[1]
				assert.Equal(t, tp.RowType, before.(avro.NamedSchema).FullName())
			} else {
				assert.Empty(t, tp.RowType)
			}
		})
	}
	_, ok := LookupTopic("nomis.unknown")
	assert.False(t, ok)
	_, ok = LookupSubject(TopicDPSAlert)
	assert.False(t, ok, "subjects carry a -key or -value suffix")
}

func fieldNames(r *avro.RecordSchema) []string {
	var out []string
	for _, f := range r.Fields() {
		out = append(out, f.Name())
	}
	return out
}

// assertNullableDefaults checks that every nullable field lists null first
// and defaults to null, the form that lets a field be added or removed later.
func assertNullableDefaults(t *testing.T, s avro.Schema, path string, seen map[string]bool) {
	t.Helper()
	switch x := s.(type) {
	case *avro.RecordSchema:
		if seen[x.FullName()] {
			return
		}
		seen[x.FullName()] = true
		for _, f := range x.Fields() {
			if u, ok := f.Type().(*avro.UnionSchema); ok && u.Nullable() {
				assert.Equal(t, avro.Null, u.Types()[0].Type(), "%s.%s: null first", path, f.Name())
				assert.True(t, f.HasDefault() && f.Default() == nil, "%s.%s: default null", path, f.Name())
			}
			assertNullableDefaults(t, f.Type(), path+"."+f.Name(), seen)
		}
	case *avro.UnionSchema:
		for _, m := range x.Types() {
			assertNullableDefaults(t, m, path, seen)
		}
	case *avro.ArraySchema:
		assertNullableDefaults(t, x.Items(), path+"[]", seen)
	case *avro.RefSchema:
		assertNullableDefaults(t, x.Schema(), path, seen)
	}
}

// sig summarises a field type: "long", "uuid", "date", "ts", "?string"
// (nullable), record and enum full names.
func sig(s avro.Schema) string {
	switch x := s.(type) {
	case *avro.PrimitiveSchema:
		switch logicalOf(x) {
		case avro.UUID:
			return "uuid"
		case avro.Date:
			return "date"
		case avro.TimestampMicros:
			return "ts"
		case "":
			return string(x.Type())
		}
		return string(x.Type()) + "/" + string(logicalOf(x))
	case *avro.UnionSchema:
		if len(x.Types()) == 2 && x.Types()[0].Type() == avro.Null {
			return "?" + sig(x.Types()[1])
		}
	case *avro.RefSchema:
		return x.Schema().FullName()
	case avro.NamedSchema:
		return x.FullName()
	case *avro.ArraySchema:
		return "[]" + sig(x.Items())
	}
	return s.String()
}

func signature(r *avro.RecordSchema) []string {
	var out []string
	for _, f := range r.Fields() {
		out = append(out, f.Name()+":"+sig(f.Type()))
	}
	return out
}

// TestDPSRows pins the row records to the DPS tables' columns, so that the
// schema and deploy/ SQL cannot drift apart unnoticed.
func TestDPSRows(t *testing.T) {
	t.Parallel()
	audit := []string{"created_at:ts", "created_by:string", "modified_at:?ts", "modified_by:?string", "deactivated_at:?ts", "deactivated_by:?string"}
	tests := []struct {
		topic string
		key   []string
		row   []string
	}{
		{TopicDPSAlertType, []string{"id:long"},
			append([]string{"id:long", "code:string", "description:string", "list_sequence:int"}, audit...)},
		{TopicDPSAlertCode, []string{"id:long"},
			append([]string{"id:long", "alert_type_id:long", "code:string", "description:string", "restricted:boolean", "list_sequence:int"}, audit...)},
		{TopicDPSAlert, []string{"id:uuid"}, []string{
			"id:uuid", "alert_code_id:long", "prison_number:string", "description:?string", "authorised_by:?string",
			"active_from:date", "active_to:?date", "created_at:ts", "last_modified_at:?ts", "deleted_at:?ts",
			"prison_code_when_created:?string", "version:int",
		}},
		{TopicDPSAuditEvent, []string{"id:uuid"}, []string{
			"id:uuid", "alert_id:uuid", "action:string", "description:string", "actioned_at:ts", "actioned_by:string",
			"actioned_by_display_name:string", "source:string", "description_updated:?boolean",
			"authorised_by_updated:?boolean", "active_from_updated:?boolean", "active_to_updated:?boolean",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.topic, func(t *testing.T) {
			t.Parallel()
			tp, ok := LookupTopic(tt.topic)
			require.True(t, ok)
			assert.Equal(t, tt.key, signature(parseSchema(t, tp.Key.Schema).(*avro.RecordSchema)))
			env := parseSchema(t, tp.Value.Schema).(*avro.RecordSchema)
			row := env.Fields()[0].Type().(*avro.UnionSchema).Types()[1].(*avro.RecordSchema)
			assert.Equal(t, tt.row, signature(row))
			assert.Equal(t, []string{
				"before:?" + tp.RowType, "after:?" + tp.RowType, "source:alertsync.Source", "op:string", "ts_ms:long",
			}, signature(env))
			source := env.Fields()[2].Type().(*avro.RecordSchema)
			assert.Equal(t, []string{
				"version:string", "connector:string", "name:string", "ts_ms:long", "snapshot:string", "db:string",
				"schema:string", "table:string", "txId:?string", "position:alertsync.Position", "lsn:?long",
				"origin:?string", "sync:boolean",
			}, signature(source))
		})
	}
}

func TestCommandShape(t *testing.T) {
	t.Parallel()
	for _, topic := range []string{TopicCommandsDPS, TopicCommandsNOMIS} {
		tp, _ := LookupTopic(topic)
		cmd := parseSchema(t, tp.Value.Schema).(*avro.RecordSchema)
		assert.Equal(t, []string{
			"command_id:uuid", "kind:alertsync.command.Kind", "prison_number:string", "origin_side:alertsync.Side",
			"source_position:alertsync.Position", "source_commit_time:ts", "dps_alert_id:?uuid",
			"nomis_booking_id:?long", "nomis_alert_seq:?int", "before:?alertsync.command.AlertState",
			"after:?alertsync.command.AlertState", "alerts:[]alertsync.command.SnapshotAlert", "reason:?string",
		}, signature(cmd), topic)
		assert.Equal(t, []string{"prison_number:string"}, signature(parseSchema(t, tp.Key.Schema).(*avro.RecordSchema)))
	}
	// Every enum of a FULL subject has a default, so that it can gain
	// symbols: an old reader maps a new symbol to the default.
	for _, tp := range Topics() {
		if tp.Compatibility != sr.CompatFull {
			continue
		}
		for _, e := range enums(parseSchema(t, tp.Value.Schema), map[string]bool{}) {
			assert.True(t, e.HasDefault(), "%s: enum %s needs a default", tp.Value.Name, e.FullName())
			assert.Equal(t, "UNKNOWN", e.Default(), "%s: enum %s", tp.Value.Name, e.FullName())
		}
	}
}

func enums(s avro.Schema, seen map[string]bool) []*avro.EnumSchema {
	switch x := s.(type) {
	case *avro.EnumSchema:
		return []*avro.EnumSchema{x}
	case *avro.RecordSchema:
		if seen[x.FullName()] {
			return nil
		}
		seen[x.FullName()] = true
		var out []*avro.EnumSchema
		for _, f := range x.Fields() {
			out = append(out, enums(f.Type(), seen)...)
		}
		return out
	case *avro.UnionSchema:
		var out []*avro.EnumSchema
		for _, m := range x.Types() {
			out = append(out, enums(m, seen)...)
		}
		return out
	case *avro.ArraySchema:
		return enums(x.Items(), seen)
	}
	return nil
}

// TestEveryTypeUsed catches .avsc files no subject reaches.
func TestEveryTypeUsed(t *testing.T) {
	t.Parallel()
	lib, err := loadLibrary(mustSub(t))
	require.NoError(t, err)
	var all strings.Builder
	for _, tp := range Topics() {
		all.WriteString(tp.Key.Schema)
		all.WriteString(tp.Value.Schema)
	}
	for _, name := range lib.names() {
		short := name[strings.LastIndexByte(name, '.')+1:]
		assert.Contains(t, all.String(), fmt.Sprintf(`"name":%q`, short), "type %s (%s) is used by no subject", name, lib.files[name])
	}
}

func mustSub(t *testing.T) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := avroFiles.ReadDir("avro")
	require.NoError(t, err)
	for _, d := range entries {
		files, err := avroFiles.ReadDir("avro/" + d.Name())
		require.NoError(t, err)
		for _, f := range files {
			data, err := avroFiles.ReadFile("avro/" + d.Name() + "/" + f.Name())
			require.NoError(t, err)
			out[d.Name()+"/"+f.Name()] = &fstest.MapFile{Data: data}
		}
	}
	return out
}

func TestLibraryResolve(t *testing.T) {
	t.Parallel()
	files := fstest.MapFS{
		"shared/pos.avsc":  {Data: []byte(`{"type":"record","name":"Pos","namespace":"x","fields":[{"name":"n","type":"long"}]}`)},
		"shared/bare.avsc": {Data: []byte(`{"type":"enum","name":"Bare","namespace":"z","symbols":["A","B"]}`)},
		"a/outer.avsc": {Data: []byte(`{"type":"record","name":"Outer","namespace":"x.a","fields":[
			{"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"p","type":"x.Pos"}]}},
			{"name":"again","type":["null","Inner"],"default":null},
			{"name":"pos","type":"x.Pos"},
			{"name":"bare","type":"z.Bare"},
			{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
			{"name":"list","type":{"type":"array","items":"x.Pos"}}]}`)},
		"b/root.avsc": {Data: []byte(`{"type":"record","name":"Root","namespace":"y","fields":[
			{"name":"first","type":"x.a.Inner"},
			{"name":"outer","type":"x.a.Outer"}]}`)},
	}
	lib, err := loadLibrary(files)
	require.NoError(t, err)
	assert.Equal(t, []string{"x.Pos", "x.a.Inner", "x.a.Outer", "y.Root", "z.Bare"}, lib.names())

	text, err := lib.resolve("y.Root")
	require.NoError(t, err)
	// Inner is used before its file's parent: it is defined at that first
	// use, and Outer refers to it by name.
	assert.Equal(t, 1, strings.Count(text, `"name":"Inner"`), text)
	assert.Equal(t, 1, strings.Count(text, `"name":"Pos"`), text)
	assert.Equal(t, 1, strings.Count(text, `"name":"Bare"`), text)
	assert.Contains(t, text, `"type":"x.a.Inner"`)
	assert.Contains(t, text, `"items":"x.Pos"`)
	assert.Contains(t, text, `"logicalType":"timestamp-micros"`)

	_, err = goavro.NewCodec(text)
	require.NoError(t, err, text)
	root := parseSchema(t, text).(*avro.RecordSchema)
	outer := root.Fields()[1].Type().(*avro.RecordSchema)
	assert.Equal(t, "x.a.Outer", outer.FullName())
	assert.Equal(t, "z.Bare", sig(outer.Fields()[3].Type()), "a type inlined into another namespace keeps its own")
	assert.Contains(t, text, `"name":"Bare","namespace":"z"`)
	assert.Equal(t, "x.Pos", sig(outer.Fields()[2].Type()))

	// Resolving the same type twice gives the same text.
	again, err := lib.resolve("y.Root")
	require.NoError(t, err)
	assert.Equal(t, text, again)
}

func TestLibraryErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files fstest.MapFS
		want  string
	}{
		{"duplicate definition", fstest.MapFS{
			"a.avsc": {Data: []byte(`{"type":"record","name":"S","namespace":"n","fields":[]}`)},
			"b.avsc": {Data: []byte(`{"type":"record","name":"n.S","fields":[]}`)},
		}, "type n.S already defined in a.avsc"},
		{"unknown reference", fstest.MapFS{
			"a.avsc": {Data: []byte(`{"type":"record","name":"S","namespace":"n","fields":[{"name":"f","type":"n.Missing"}]}`)},
		}, `unknown type "n.Missing"`},
		{"short name outside its namespace", fstest.MapFS{
			"a.avsc": {Data: []byte(`{"type":"record","name":"P","namespace":"m","fields":[]}`)},
			"b.avsc": {Data: []byte(`{"type":"record","name":"S","namespace":"n","fields":[{"name":"f","type":"P"}]}`)},
		}, `unknown type "P"`},
		{"invalid JSON", fstest.MapFS{"a.avsc": {Data: []byte(`{"type":`)}}, "parsing a.avsc"},
		{"duplicate key", fstest.MapFS{"a.avsc": {Data: []byte(`{"type":"record","type":"enum"}`)}}, `duplicate key "type"`},
		{"no namespace", fstest.MapFS{"a.avsc": {Data: []byte(`{"type":"enum","name":"E","symbols":["A"]}`)}}, "enum E has no namespace"},
		{"record without name", fstest.MapFS{"a.avsc": {Data: []byte(`{"type":"record","fields":[]}`)}}, "record without a name"},
		{"fields not an array", fstest.MapFS{"a.avsc": {Data: []byte(`{"type":"record","name":"n.R","fields":{}}`)}}, "fields is not an array"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := loadLibrary(tt.files)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}

	lib, err := loadLibrary(fstest.MapFS{})
	require.NoError(t, err)
	_, err = lib.resolve("nope.Nothing")
	require.ErrorContains(t, err, `unknown type "nope.Nothing"`)
}

func TestBuildCatalogErrors(t *testing.T) {
	t.Parallel()
	_, err := buildCatalog(mustSub(t), []topicDef{{name: "t", kind: KindChange, key: "no.Such", value: TypeCommand, compat: sr.CompatBackward}})
	require.ErrorContains(t, err, "resolving key schema of t")
}
