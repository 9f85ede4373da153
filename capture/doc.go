// Package capture holds the change-data-capture sources of alertsync, one
// subpackage per source: DPS (PostgreSQL logical replication with pgoutput)
// and NOMIS (a sync-owned journal filled by row triggers, with an Oracle and a
// PostgreSQL dialect).
//
// Contract shared by every source (DESIGN.md, guarantees 1, 3 and 6): records
// are published to Kafka in source commit order, one topic per table, as
// Debezium-compatible Avro envelopes; a source position is confirmed (slot
// flush LSN, journal rows deleted) only after Kafka has acknowledged every
// record up to it; the sync's own writes are captured with `source.sync =
// true`; and a database lock held for the process's life keeps a second
// capture of the same source from running.
//
// Status: the sources are being built (issues 3, 4 and 5); this package holds
// no code yet.
package capture
