// Package reconcile is `alertsync reconcile`: it compares the alerts NOMIS
// holds on each prisoner's current booking (BOOKING_SEQ 1) with the DPS
// alerts of the same prison number, on every field the sync maps, and
// reports what differs. It reads and never writes.
//
// # Data flow
//
// Both sides are read in prison-number order, a page of prisoners at a
// time (keyset pagination: "prison number after the last one read"), by
// two readers running ahead of the comparison in their own goroutines:
// the NOMIS side through a NOMISReader (the PostgreSQL stand-in or Oracle),
// the DPS side from public.alert. Each page carries the sync's mapping rows
// with the alerts (the NOMIS-side alertsync_alert_mapping, the DPS-side
// alertsync.alert_mapping). The two streams are merged per prisoner and
// compared in memory (Compare, pure). The comparison maps both sides to the
// sync's target-neutral model with transform/rules – the same code the
// transformer runs – so that reconcile and the sync cannot disagree on what
// "equal" means (truncation of text to NOMIS's columns, status by dates in
// the configured zone, types from the reference data).
//
// The two databases cannot be read in one snapshot, and the sync may be
// carrying a change across while reconcile reads. So a prisoner with a
// difference is re-read on both sides once the full pass is over (after
// reconcile.recheck_delay), and only what still differs is reported.
//
// # Kinds of difference
//
//   - missing_in_dps: a NOMIS alert with a mapping whose DPS alert is not
//     among the prisoner's DPS alerts.
//   - missing_in_nomis: a live DPS alert with a DPS-side mapping whose NOMIS
//     row is not on the prisoner's current booking.
//   - field: a mapped pair that differs in code, type, active_from,
//     active_to, status, description or authorised_by.
//   - unmapped: a row with a mapping on neither side; Match tells whether
//     an unmapped row of the other side has the same code and dates.
//   - deleted_but_present: a pair where one side (a soft-deleted DPS alert,
//     or a DPS-side mapping marked deleted) says the alert is gone but a row
//     is live. A NOMIS-side mapping marked deleted is not read: the sync
//     deleted the row it named, and a row under that key now is an alert
//     NOMIS created since (ALERT_SEQ is max + 1), as capture nomis sees it.
//   - mapping_conflict: the two mapping tables link the pair differently.
//   - invalid: a row the mapping rules refuse (e.g. an unknown code).
//
// Alert descriptions and comments are personal data: they are never
// logged, and a report carries the differing values only when asked to
// (Options.ShowValues); otherwise it names the fields.
//
// # Limits
//
// A mapping whose NOMIS row no longer exists is not read, so a DPS alert
// whose only mapping is such a NOMIS-side row is reported unmapped rather
// than deleted_but_present. An alert whose two sides carry different prison
// numbers shows as missing (or unmapped) under each prisoner. Both
// databases must sort prison numbers like Go does (byte order); prison
// numbers are upper-case letters and digits, for which every collation in
// use does, and reconcile stops with an error if a page arrives out of order.
package reconcile
