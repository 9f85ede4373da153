package dps

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/twmb/franz-go/pkg/sr"

	"github.com/alertsync/alertsync/schemas"
)

// ColumnInfo is a column of a captured table as the catalog describes it.
type ColumnInfo struct {
	Name     string
	TypeOID  uint32
	Nullable bool
}

// TableInfo is a captured table: its columns in order and its primary key.
type TableInfo struct {
	Schema, Table string
	Columns       []ColumnInfo
	Key           []string // primary-key columns, in key order
}

// Topic returns the change topic of the table, without prefix: dps.<schema>.<table>.
func (t *TableInfo) Topic() string { return "dps." + t.Schema + "." + t.Table }

func (t *TableInfo) namespace() string { return "alertsync.dps." + t.Schema + "." + t.Table }

// loadTable reads a table's columns and primary key from the catalog.
func loadTable(ctx context.Context, conn *pgx.Conn, schema, table string) (*TableInfo, error) {
	rows, err := conn.Query(ctx, `
		SELECT a.attname, a.atttypid, NOT a.attnotnull,
		       coalesce((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) WHERE k.attnum = a.attnum), 0)::int
		  FROM pg_attribute a
		  JOIN pg_class c ON c.oid = a.attrelid
		  JOIN pg_namespace n ON n.oid = c.relnamespace
		  LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
		 WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
		 ORDER BY a.attnum`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	t := &TableInfo{Schema: schema, Table: table}
	keyPos := map[int]string{}
	for rows.Next() {
		var c ColumnInfo
		var pos int
		if err := rows.Scan(&c.Name, &c.TypeOID, &c.Nullable, &pos); err != nil {
			return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, table, err)
		}
		if pos > 0 {
			keyPos[pos] = c.Name
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, table, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("table %s.%s: %w", schema, table, ErrNoSuchTable)
	}
	for i := 1; i <= len(keyPos); i++ {
		t.Key = append(t.Key, keyPos[i])
	}
	if len(t.Key) == 0 {
		return nil, fmt.Errorf("table %s.%s has no primary key; a change topic is keyed by it: %w", schema, table, ErrNoPrimaryKey)
	}
	return t, nil
}

// avroType is the Avro type of a column type and the union branch name goavro
// gives it.
func avroType(oid uint32) (any, string) {
	switch oid {
	case pgtype.BoolOID:
		return "boolean", "boolean"
	case pgtype.Int2OID, pgtype.Int4OID:
		return "int", "int"
	case pgtype.Int8OID, pgtype.OIDOID:
		return "long", "long"
	case pgtype.Float4OID, pgtype.Float8OID:
		return "double", "double"
	case pgtype.UUIDOID:
		return map[string]any{"type": "string", "logicalType": "uuid"}, "string"
	case pgtype.DateOID:
		return map[string]any{"type": "int", "logicalType": "date"}, "int.date"
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		return map[string]any{"type": "long", "logicalType": "timestamp-micros"}, "long.timestamp-micros"
	case pgtype.ByteaOID:
		return "bytes", "bytes"
	default:
		return "string", "string"
	}
}

// tableSchemas builds the key and value subjects of a table's change topic:
// the key record of its primary key, and the Debezium-style envelope whose
// before/after record has one field per column (nullable columns as
// ["null", T] with default null) and whose source is the shared
// alertsync.Source record.
func tableSchemas(t *TableInfo) (schemas.Topic, error) {
	source, err := schemas.ResolvedType(schemas.TypeSource)
	if err != nil {
		return schemas.Topic{}, err
	}
	var sourceDef any
	if err := json.Unmarshal([]byte(source), &sourceDef); err != nil {
		return schemas.Topic{}, fmt.Errorf("parsing the Source schema: %w", err)
	}
	byName := map[string]ColumnInfo{}
	fields := make([]any, 0, len(t.Columns))
	for _, c := range t.Columns {
		byName[c.Name] = c
		typ, _ := avroType(c.TypeOID)
		f := map[string]any{"name": c.Name, "type": typ}
		if c.Nullable {
			f["type"] = []any{"null", typ}
			f["default"] = nil
		}
		fields = append(fields, f)
	}
	keyFields := make([]any, 0, len(t.Key))
	for _, k := range t.Key {
		typ, _ := avroType(byName[k].TypeOID)
		keyFields = append(keyFields, map[string]any{"name": k, "type": typ})
	}
	ns := t.namespace()
	value := map[string]any{
		"type": "record", "name": "Envelope", "namespace": ns,
		"fields": []any{
			map[string]any{"name": "before", "type": []any{"null", map[string]any{"type": "record", "name": "Value", "fields": fields}}, "default": nil},
			map[string]any{"name": "after", "type": []any{"null", "Value"}, "default": nil},
			map[string]any{"name": "source", "type": sourceDef},
			map[string]any{"name": "op", "type": "string"},
			map[string]any{"name": "ts_ms", "type": "long"},
		},
	}
	key := map[string]any{"type": "record", "name": "Key", "namespace": ns, "fields": keyFields}
	vb, err := json.Marshal(value)
	if err != nil {
		return schemas.Topic{}, err
	}
	kb, err := json.Marshal(key)
	if err != nil {
		return schemas.Topic{}, err
	}
	name := t.Topic()
	return schemas.Topic{
		Name: name, Kind: schemas.KindChange, Compatibility: sr.CompatBackward, RowType: ns + ".Value",
		Key:   schemas.Subject{Name: schemas.KeySubject(name), Type: ns + ".Key", Schema: string(kb), Compatibility: sr.CompatBackward},
		Value: schemas.Subject{Name: schemas.ValueSubject(name), Type: ns + ".Envelope", Schema: string(vb), Compatibility: sr.CompatBackward},
	}, nil
}

// rowShape maps a decoded Row (in the column order of a pgoutput Relation)
// to the Avro record of a table, by column name.
type rowShape struct {
	table    *TableInfo
	names    []string // relation column names, in relation order
	nullable []bool
	branch   []string
	oids     []uint32 // catalog type of each column
	keyIdx   []int    // relation index of each key column
}

func newRowShape(t *TableInfo, rel *Relation) (*rowShape, error) {
	info := map[string]ColumnInfo{}
	for _, c := range t.Columns {
		info[c.Name] = c
	}
	s := &rowShape{table: t}
	relIdx := map[string]int{}
	for i, c := range rel.Columns {
		ci, ok := info[c.Name]
		if !ok {
			// The relation has a column the catalog no longer has (dropped
			// since): publish it as a nullable string is wrong; refuse.
			return nil, fmt.Errorf("column %s of %s.%s is not in the catalog: %w", c.Name, t.Schema, t.Table, ErrSchemaDrift)
		}
		_, br := avroType(ci.TypeOID)
		s.names = append(s.names, c.Name)
		s.nullable = append(s.nullable, ci.Nullable)
		s.branch = append(s.branch, br)
		s.oids = append(s.oids, ci.TypeOID)
		relIdx[c.Name] = i
	}
	for _, k := range t.Key {
		i, ok := relIdx[k]
		if !ok {
			return nil, fmt.Errorf("key column %s of %s.%s missing from the replication relation: %w", k, t.Schema, t.Table, ErrSchemaDrift)
		}
		s.keyIdx = append(s.keyIdx, i)
	}
	return s, nil
}
