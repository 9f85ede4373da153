// Package apply writes target commands idempotently into DPS and NOMIS. Each
// writer stores its consumed offsets, the alert mapping and per-alert source
// positions in the target database in the same transaction as its writes,
// with a fenced update (DESIGN.md guarantees 1, 2 and 4).
//
// Status: being built (issue 7); this package holds no code yet.
package apply
