// Package history is `alertsync history`: the timeline of one prisoner or
// one alert, replayed from the pipeline's topics, for analysts who audit
// what happened to an alert and why. It reads and never writes.
//
// # Data flow
//
//	dps.public.alert_code, dps.public.alert_type ─ read whole ─▶ refData (code ids → codes)
//	nomis.oms_owner.offender_alerts, nomis.alertsync.prisoner_alerts,
//	dps.public.alert, alertsync.commands.dps, alertsync.commands.nomis,
//	alertsync.outcomes, alertsync.dlq ─ Read ─▶ []Event ─ Select ─▶ Selection ─ WriteText | WriteJSON
//
// Read lists each topic's end offsets (high watermarks) when it starts and
// reads every partition, read committed, from its start (or, with a
// --since, from the first offset whose record timestamp is at or after it:
// ListOffsetsAfterMilli) up to those offsets, so that it ends. A
// transaction open at the start is waited for: its records lie before the
// end offsets, and a read-committed consumer reaches them only once it has
// ended; the abort marker of an aborted transaction (control records are
// kept) shows that its records are passed. The whole read is bounded by
// history.timeout; an unreachable broker fails within kafka.retry_timeout.
//
// Each record's key and value are decoded with the registry codec (the
// writer's schema, by id) and turned into an Event by the pure converters
// of records.go, which reuse the transformer's decoders (transform/decode)
// and the applies' command decoder (apply.DecodeCommand). A record that
// cannot be decoded, or lacks the shape of its schema, becomes an event of
// kind undecodable, attributed by its key when the key decodes; a registry
// that cannot be reached is an error. A DLQ entry's original record is
// decoded too, to learn its prisoner, alert and command id.
//
// Select (pure) links and picks the events: keys that name one alert (a
// NOMIS change carrying its DPS id, a command or outcome carrying both, a
// snapshot's mapped alert) are joined, so that an alert is followed across
// both systems whichever key it is asked by; outcomes and DLQ entries of
// the commands picked are picked too, and each command lists its outcomes.
// Events sort by time – the source commit time for changes and snapshots,
// the record timestamp otherwise – with ties broken by topic, partition and
// offset.
//
// # Guarantees
//
//   - Personal data is never printed: alert descriptions and comments,
//     authorised-by, and user names are read only to be compared; an Event
//     has no field that could hold them, so a change to them is shown by
//     the field's name only. The error text of DLQ entries (which may quote
//     what a database said about a row) is never read, only its stage,
//     error kind and reason word. An undecodable record is described by
//     the class of error, never by the decoder's message.
//   - Records of aborted transactions are never shown.
//   - The read ends: up to the end offsets listed at the start.
//
// Limits: everything read is held in memory until it is selected (a few
// hundred bytes per record); with --since, links made before it (an
// outcome naming both keys of an alert) are not known and commands written
// before it are not read, so an outcome after --since may not name its
// command; the command topics keep 7 days by default (topics.retention.commands).
package history
