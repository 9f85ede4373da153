// Package deploy holds the SQL that alertsync installs or assumes, embedded
// so the binary carries it, and the alert reference data in one place.
//
//   - dps/schema.sql: the DPS alerts service's own tables (alert_type,
//     alert_code, alert, audit_event), faithful to the real service, for the
//     demo and the tests. alertsync never changes these tables in production.
//     Idempotent.
//
//   - dps/seed.sql: the alert types and codes, generated from
//     reference/alert_types.csv and reference/alert_codes.csv by
//     `go generate ./deploy`; a test fails when it is out of date. Idempotent
//     (ON CONFLICT DO NOTHING).
//
//   - dps/migrations/NNNN_name.sql: the sync-owned objects in schema
//     alertsync of the DPS database (mapping, fenced offsets, outbox, DLQ
//     holds), applied in order by internal/migrate as the set "dps". An
//     applied migration is never edited; changes come as a new file.
//
//   - nomis/schema.sql: a PostgreSQL stand-in of the NOMIS tables alertsync
//     touches (schema oms_owner: OFFENDERS, OFFENDER_BOOKINGS,
//     OFFENDER_ALERTS, REFERENCE_CODES) with NOMIS-like audit triggers that
//     fill the AUDIT_* columns from the session's nomis.* settings (the
//     stand-in's form of NOMIS's session context), for local runs, the demo
//     and the tests. Never applied to a real NOMIS. Idempotent.
//
//   - nomis/seed.sql: the same alert types and codes as NOMIS REFERENCE_CODES
//     (domains ALERT and ALERT_CODE), generated like dps/seed.sql.
//
//   - nomis/migrations/NNNN_name.sql: the sync-owned objects in schema
//     alertsync of the NOMIS database (journal, journal triggers,
//     commit-ordered journal read, mapping, fenced offsets, outbox, DLQ
//     holds), the set "nomis". They add triggers to the NOMIS tables and
//     change nothing else of them; the tables must exist first.
//
// AlertTypes and AlertCodes expose the reference data to Go, so other seeds
// (the NOMIS stand-in's REFERENCE_CODES, RenderNOMISSeed) are built from the
// same source.
package deploy
