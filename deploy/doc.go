// Package deploy holds the SQL that alertsync installs or assumes, embedded
// so the binary carries it, and the alert reference data in one place.
//
//   - dps/schema.sql: the DPS alerts service's own tables (alert_type,
//     alert_code, alert, audit_event), faithful to the real service, for the
//     demo and the tests. alertsync never changes these tables in production.
//     Idempotent.
//   - dps/seed.sql: the alert types and codes, generated from
//     reference/alert_types.csv and reference/alert_codes.csv by
//     `go generate ./deploy`; a test fails when it is out of date. Idempotent
//     (ON CONFLICT DO NOTHING).
//   - dps/migrations/NNNN_name.sql: the sync-owned objects in schema
//     alertsync of the DPS database (mapping, fenced offsets, outbox, DLQ
//     holds), applied in order by internal/migrate as the set "dps". An
//     applied migration is never edited; changes come as a new file.
//
// AlertTypes and AlertCodes expose the reference data to Go, so other seeds
// (the NOMIS stand-in's REFERENCE_CODES) are built from the same source.
package deploy
