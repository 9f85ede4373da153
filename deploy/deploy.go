package deploy

import (
	"embed"
	"fmt"
	"io/fs"
)

//go:generate go run ./internal/genseed

//go:embed dps/schema.sql dps/seed.sql dps/migrations/*.sql reference/*.csv
var files embed.FS

// DPSSchemaSQL returns dps/schema.sql: the DPS alerts service's tables.
func DPSSchemaSQL() string { return mustRead("dps/schema.sql") }

// DPSSeedSQL returns dps/seed.sql: the alert types and codes.
func DPSSeedSQL() string { return mustRead("dps/seed.sql") }

// DPSMigrations returns the sync-owned migrations of the DPS database
// (files NNNN_name.sql at the root of the returned FS).
func DPSMigrations() fs.FS {
	sub, err := fs.Sub(files, "dps/migrations")
	if err != nil {
		panic(fmt.Sprintf("deploy: embedded dps/migrations: %v", err))
	}
	return sub
}

// Migrations returns the migration files of the named set ("dps"), and
// false for an unknown name.
func Migrations(set string) (fs.FS, bool) {
	switch set {
	case "dps":
		return DPSMigrations(), true
	default:
		return nil, false
	}
}

// MigrationSets lists the names Migrations knows.
func MigrationSets() []string { return []string{"dps"} }

func mustRead(name string) string {
	b, err := files.ReadFile(name)
	if err != nil {
		panic(fmt.Sprintf("deploy: embedded %s: %v", name, err)) // embedded at build time
	}
	return string(b)
}
