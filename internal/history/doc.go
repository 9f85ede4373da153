// Package history is `alertsync history`: the timeline of one prisoner or
// one alert, replayed from the pipeline's topics, for analysts who audit
// what happened to an alert and why. It reads and never writes.
//
// # Data flow
//
//	dps.public.alert_code, dps.public.alert_type ─ read whole ─▶ refData (code ids → codes)
//	nomis.oms_owner.offender_alerts, nomis.alertsync.prisoner_alerts,
//	dps.public.alert, alertsync.commands.dps, alertsync.commands.nomis,
//	alertsync.outcomes, alertsync.dlq ─ Read(selector) ─▶ Timeline ─ Select ─▶ Selection ─ WriteText | WriteJSON
//
// Read lists each topic's end offsets (high watermarks) when it starts and
// reads every partition, read committed, from its start (or, with a
// --since, from the first offset whose record timestamp is at or after
// history.since_lookback before it: ListOffsetsAfterMilli) up to those
// offsets, so that it ends. A transaction open at the start is waited for:
// its records lie before the end offsets, and a read-committed consumer
// reaches them only once it has ended; the abort marker of an aborted
// transaction (control records are kept) shows that its records are
// passed. A partition whose log start passes its end during the read (its
// records expired) is done. The whole read is bounded by history.timeout;
// an unreachable broker fails within kafka.retry_timeout.
//
// Each record's key and value are decoded with the registry codec (the
// writer's schema, by id) and turned into an Event by the pure converters
// of records.go, which reuse the transformer's decoders (transform/decode)
// and the applies' command decoder (apply.DecodeCommand). A record that
// cannot be decoded, or lacks the shape of its schema, becomes an event of
// kind undecodable, attributed by its key when the key decodes; a registry
// that cannot be reached is an error, and so is one that knows none of the
// schema ids read (registry.url names another registry). A DLQ entry's
// original record is decoded too, to learn its prisoner, alert and command
// id; one that cannot be is logged by its place.
//
// Read is given the selector and keeps an Event only for a record that may
// concern it, so that memory follows the history asked for, not the topics
// (which keep the changes for ever). For a prisoner it reads once, keeping
// the events that name the prisoner (a DPS change by either image) or no
// prisoner at all. For an alert it reads the same offsets twice: the first
// pass joins the keys of every alert and notes the alerts each command
// names; the second keeps the events of the selected alert, of its
// commands, and the undecodable records that name nobody. Besides the
// events kept, it holds the union-find of the alert keys known in both
// systems (every record's links) and, in the first pass of an alert, the
// keys of each command.
//
// Select (pure) links and picks the events: keys that name one alert (a
// NOMIS change carrying its DPS id, a command or outcome carrying both, a
// snapshot's mapped alert) are joined, so that an alert is followed across
// both systems whichever key it is asked by; outcomes and DLQ entries of
// the commands picked are picked too, and each command lists its outcomes.
// Events sort by time – the source commit time for changes and snapshots,
// the record timestamp otherwise – with ties broken by source position
// (per database) and then by topic, partition and offset; a command's
// outcomes and an outcome's command are chosen by place too, so that the
// output does not depend on the order the partitions were read in.
//
// # Guarantees
//
//   - Personal data is never printed: alert descriptions and comments,
//     authorised-by, and user names are read only to be compared; an Event
//     has no field that could hold them, so a change to them is shown by
//     the field's name only. The error text of DLQ entries (which may quote
//     what a database said about a row) is never read, only its stage,
//     error kind and reason word. An undecodable record is described by
//     the class of error, never by the decoder's message, and logged by its
//     place only.
//   - A string of a record that is not all printable (a line break, a tab,
//     a terminal escape) is printed quoted in the text output.
//   - Records of aborted transactions are never shown.
//   - The read ends: up to the end offsets listed at the start.
//
// Limits: memory grows with the events that may be selected (for a
// prisoner, theirs and those naming no prisoner), with the alerts known in
// both systems (about 150 bytes each in the union-find, measured) and, in
// the first pass of an alert, with the commands read (about 180 bytes
// each); not with the records of other prisoners and alerts. With --since,
// links made more than history.since_lookback before it (an outcome naming
// both keys of an alert) are not known and commands written then are not
// read, so an outcome after --since may not name its command. The command
// topics keep 7 days by default (topics.retention.commands).
// history.timezone must be the NOMIS capture's capture.timezone.
package history
