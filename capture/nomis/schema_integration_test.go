package nomis

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// TestSchemasMatchStandIn pins the published row records to the NOMIS
// tables of the stand-in (deploy/nomis/schema.sql): the same columns in the
// same order, the same nullability, NUMBER(p ≤ 9) as int and wider NUMBERs
// as long, VARCHAR2 as string, DATE and TIMESTAMP as timestamp-micros, and
// the primary key as the record key.
func TestSchemasMatchStandIn(t *testing.T) {
	t.Parallel()
	db := pgtest.NewDB(t)
	db.Exec(t, deploy.NOMISSchemaSQL())
	tables := mustTables(t)
	for name, tb := range tables {
		t.Run(name, func(t *testing.T) {
			rows, err := db.Pool.Query(t.Context(), `
SELECT c.column_name,
       CASE WHEN c.data_type = 'numeric' AND c.numeric_precision <= 9 THEN 'int'
            WHEN c.data_type = 'numeric' THEN 'long'
            WHEN c.data_type = 'character varying' THEN 'string'
            WHEN c.data_type = 'timestamp without time zone' THEN 'timestamp'
            ELSE c.data_type END,
       c.is_nullable = 'YES',
       coalesce((SELECT k.ordinal_position FROM information_schema.key_column_usage k
                  JOIN information_schema.table_constraints tc ON tc.constraint_name = k.constraint_name AND tc.constraint_schema = k.constraint_schema
                 WHERE tc.constraint_type = 'PRIMARY KEY' AND k.table_schema = c.table_schema AND k.table_name = c.table_name
                   AND k.column_name = c.column_name), 0)
  FROM information_schema.columns c
 WHERE c.table_schema = 'oms_owner' AND c.table_name = $1
 ORDER BY c.ordinal_position`, name)
			require.NoError(t, err)
			defer rows.Close()
			kindNames := map[colKind]string{kindInt: "int", kindLong: "long", kindString: "string", kindTimestamp: "timestamp"}
			var got, want []column
			var gotKinds, wantKinds []string
			keyAt := map[int]string{}
			for rows.Next() {
				var c column
				var kind string
				var keyPos int
				require.NoError(t, rows.Scan(&c.name, &kind, &c.nullable, &keyPos))
				got = append(got, column{name: c.name, nullable: c.nullable})
				gotKinds = append(gotKinds, c.name+":"+kind)
				if keyPos > 0 {
					keyAt[keyPos] = c.name
				}
			}
			require.NoError(t, rows.Err())
			for _, c := range tb.columns {
				want = append(want, column{name: c.name, nullable: c.nullable})
				wantKinds = append(wantKinds, c.name+":"+kindNames[c.kind])
			}
			require.Equal(t, wantKinds, gotKinds, "column types")
			require.Equal(t, want, got, "columns and nullability")
			var keys []string
			for i := 1; i <= len(keyAt); i++ {
				keys = append(keys, keyAt[i])
			}
			var schemaKeys []string
			for _, i := range tb.key {
				schemaKeys = append(schemaKeys, tb.columns[i].name)
			}
			require.Equal(t, schemaKeys, keys, "primary key")
		})
	}
}
