// Package transform is the stream loop of `alertsync transform`: it maps
// NOMIS's booking-level alerts to DPS's person-level alerts and back.
//
// Its rules are a pure package (transform/rules: no I/O, unit tested and
// fuzzed); transform/decode turns change records into their inputs
// (directly from Avro binary for the current schemas) and transform/encode
// writes their commands.
//
// Contract:
//
//   - Exactly once. Every replica consumes nomis.oms_owner.offender_alerts,
//     nomis.alertsync.prisoner_alerts and dps.public.alert in one consumer
//     group (transform.group), read committed, and produces the commands of a
//     poll (alertsync.commands.dps / .nomis, keyed by prison number) and its
//     DLQ entries in one Kafka transaction that also commits the consumed
//     offsets (kgo.GroupTransactSession). A transaction that does not commit
//     is consumed again. Replicas have stable transactional ids
//     (transform.transactional_id_prefix + transform.replica_id) and are
//     static group members with the same id, so a restarted replica fences
//     its predecessor's open transaction and takes its partitions back at
//     once; transform.transaction_timeout bounds how long a dead replica's
//     open transaction holds read-committed consumers up.
//
//   - Records are mapped before their transaction begins: a wait for
//     reference data never runs into the transaction timeout.
//
//   - Reference data. Every replica reads dps.public.alert_code and
//     alert_type in full (outside the group) before it consumes anything; a
//     record with a code not yet known waits for those topics to catch up
//     (transform.reference_wait) before it goes to the DLQ as unknown_code.
//
//   - Loops. Records the sync itself wrote (source.sync) produce nothing
//     (guarantee 3), nor do booking copies, alerts on old bookings and
//     updates that change nothing mapped; all are counted by reason.
//
//   - Bad input. A record that cannot be decoded or mapped goes to
//     alertsync.dlq (stage transform, error_kind decode or mapping, the
//     reason, the original bytes and headers) in the same transaction; the
//     loop goes on. Errors and logs name keys, fields and codes, never alert
//     text.
//
//   - Direction switches (ADR002). sync.nomis_to_dps and sync.dps_to_nomis
//     apply from the next poll (SetSwitches: SIGHUP, or a change of the
//     configuration file). While a direction is off its records are
//     consumed, committed and counted, and produce nothing; turning it on
//     again does not replay them unless asked (Replay, `alertsync transform
//     replay`).
//
//   - The DPS user of a DPS change is the record's schemas.HeaderActionedBy
//     header (the DPS capture joins it from the transaction's audit_event);
//     without one the rules' fallback user applies.
//
// Not done here: holding later records of an alert behind a DLQ'd one (the
// applies hold commands).
package transform
