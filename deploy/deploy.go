package deploy

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:generate go run ./internal/genseed

//go:embed dps/schema.sql dps/seed.sql dps/migrations/*.sql
//go:embed nomis/schema.sql nomis/seed.sql nomis/migrations/*.sql
//go:embed reference/*.csv
var files embed.FS

// DPSSchemaSQL returns dps/schema.sql: the DPS alerts service's tables.
func DPSSchemaSQL() string { return mustRead("dps/schema.sql") }

// DPSSeedSQL returns dps/seed.sql: the alert types and codes.
func DPSSeedSQL() string { return mustRead("dps/seed.sql") }

// DPSMigrations returns the sync-owned migrations of the DPS database
// (files NNNN_name.sql at the root of the returned FS).
func DPSMigrations() fs.FS { return mustSub("dps/migrations") }

// NOMISSchemaSQL returns nomis/schema.sql: the PostgreSQL stand-in of the
// NOMIS tables (schema oms_owner) with NOMIS-like audit triggers, for local
// runs, the demo and the tests. Idempotent.
func NOMISSchemaSQL() string { return mustRead("nomis/schema.sql") }

// NOMISSeedSQL returns nomis/seed.sql: the alert types and codes as NOMIS
// REFERENCE_CODES (domains ALERT and ALERT_CODE) of the stand-in. Idempotent.
func NOMISSeedSQL() string { return mustRead("nomis/seed.sql") }

// NOMISMigrations returns the sync-owned migrations of the NOMIS database
// (files NNNN_name.sql at the root of the returned FS): journal, journal
// triggers, mapping and apply bookkeeping in schema alertsync. They need the
// NOMIS tables to exist (on the stand-in: NOMISSchemaSQL first).
func NOMISMigrations() fs.FS { return mustSub("nomis/migrations") }

// Migrations returns the migration files of the named set ("dps" or
// "nomis"), and false for an unknown name.
func Migrations(set string) (fs.FS, bool) {
	switch set {
	case "dps":
		return DPSMigrations(), true
	case "nomis":
		return NOMISMigrations(), true
	default:
		return nil, false
	}
}

// MigrationSets lists the names Migrations knows, in a fixed order.
func MigrationSets() []string { return []string{"dps", "nomis"} }

func mustSub(dir string) fs.FS {
	sub, err := fs.Sub(files, dir)
	if err != nil {
		panic(fmt.Sprintf("deploy: embedded %s: %v", dir, err)) // embedded at build time
	}
	return sub
}

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("deploy: embedded %s: %v", name, err)) // embedded at build time
	}
	return string(b)
}
