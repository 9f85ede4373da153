// Package dps captures changes of the DPS alerts database (PostgreSQL) with
// logical replication (pgoutput, through pglogrepl) and publishes them to one
// Kafka topic per table as Debezium-compatible Avro envelopes.
//
// Data flow:
//
//	pgoutput ─▶ Decoder (pure) ─▶ Change ─▶ envelope (schema from the table
//	catalog) ─▶ Kafka (idempotent, acks=all) ─▶ acker ─▶ standby status (flush LSN)
//
// Guarantees:
//
//   - Nothing lost. The flush LSN confirmed to the server is the end LSN of
//     the newest transaction all of whose records, and all earlier
//     transactions' records, Kafka has acknowledged. After a crash the server
//     resends from there, so only the unconfirmed tail may repeat.
//   - Order. Changes are produced in commit order; records of one key go to
//     one partition, so per-key order is commit order. source.position is
//     (commit LSN, change LSN), distinct and ordered even for two changes of
//     one row in one transaction.
//   - Consistent start. The first start creates the slot with an exported
//     snapshot, publishes every row as op "r" from that snapshot, records the
//     snapshot as done in alertsync.capture_state, and streams from the slot's
//     consistent point: no gap, no overlap. A snapshot interrupted by a crash
//     is taken again from a new slot, never taken as complete.
//   - Sync marker. A transaction that calls
//     pg_logical_emit_message(true, 'alertsync', origin) before its changes
//     is published with source.sync = true and source.origin = origin. The
//     marker must be the first statement of the transaction (apply dps does
//     this), because changes are published as they are decoded.
//   - One writer. The capture holds a session advisory lock keyed by its slot
//     for its life; a second process exits with a clear message (or waits,
//     with capture.lock_wait).
//
// PostgreSQL or Kafka being away is retried with backoff and logged;
// the process exits non-zero only for what a human must fix: a slot dropped or
// invalidated behind its back (the way out is --resnapshot), REPLICA IDENTITY
// not FULL on alert, a publication or slot it may not create, a record Kafka
// refuses.
package dps
