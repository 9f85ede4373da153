// Package nomis captures changes of NOMIS's alert tables (OFFENDER_ALERTS,
// OFFENDER_BOOKINGS, OFFENDERS) from the sync-owned journal that row
// triggers fill (deploy/nomis/migrations), and publishes them to one Kafka
// topic per table as Debezium-compatible Avro envelopes.
//
// Data flow:
//
//	journal (commit order) ─▶ Keys, then Rows of a batch ─▶ decode (pure) ─▶ alert
//	contexts (one query) ─▶ envelopes ─▶ Kafka (idempotent, acks=all) ─▶
//	every record acknowledged ─▶ Delete the batch's journal rows ─▶ next batch
//
// While Kafka acknowledges a full batch, the next one is read (skipping the
// rows in flight), built and produced; batches are deleted in order, each
// only once every record of it is acknowledged, so at most two batches are
// in flight. The next batch is read at once when a batch was full; otherwise the
// capture waits for a wake-up (LISTEN/NOTIFY on the PostgreSQL stand-in) or
// an adaptive poll interval (capture.poll_min doubling to capture.poll_max
// while the journal stays empty).
//
// Records: topics nomis.oms_owner.offender_alerts, …offender_bookings,
// …offenders (after topics.prefix), keyed by the primary key; value
// {before, after, source, op, ts_ms, session[, context]}. op is c, u or d;
// a delete is followed by a tombstone; an update that changes the primary
// key is published as a delete, tombstone and create. source.position is
// {commit, change} = (commit time in µs on the stand-in, commit SCN on
// Oracle; journal id), source.ts_ms the commit time, source.origin the
// writing session's module and source.sync true when that module is
// DPS_SYNCHRONISATION. session carries the writing session's module,
// additional info (OMKCOPY.COPY_BOOKING_DATA for booking copies) and user,
// read by the trigger from the session context: a delete carries the
// deleting session's. Alert records add context: the prison number and
// booking sequence of the alert's booking and the DPS id from
// ALERTSYNC_ALERT_MAPPING, looked up when the batch is captured (so "as
// known when captured", not as of the change's commit).
//
// Prisoner resyncs (resync.go, snapshot.go): a change that makes NOMIS's
// current-booking view authoritative for a prisoner (new current booking,
// recall switch, booking moved, merge, booking copy) records a pending
// resync in the same transaction as the journal delete; once
// capture.resync_delay has passed without another such change for the
// prisoner, the poller reads the alerts on the prisoner's current booking in
// one snapshot transaction and publishes them as one record on
// nomis.alertsync.prisoner_alerts (key: prison number), positioned so that
// every change the read did not see comes after it.
//
// Initial load: on the first start (capture.initial_load=auto) or with
// Capture.Snapshot, every alert on a current booking is published as op r
// and every prisoner with a current booking gets a snapshot, all from one
// snapshot transaction; the journal rows that transaction saw are then
// deleted (folded into the load) and the rest published after it.
//
// Guarantees:
//
//   - Nothing lost. A journal row is deleted only after Kafka has
//     acknowledged every record of its batch (or its DLQ entry). A crash
//     between the acknowledgement and the delete publishes those rows again:
//     only the unconfirmed tail repeats, in the same order.
//   - Commit order. The dialect's Keys returns journal positions in commit
//     order and never one while a transaction that committed earlier may
//     still become visible; the capture pages through one such list batch
//     by batch (Rows fetches a batch's rows by id) and asks for a new one
//     only when it is used up, since every row of a later list comes after
//     all rows of an earlier one. So a transaction that started first but
//     committed last is neither skipped nor published ahead of its turn. Records of one
//     key go to one partition in that order; batches follow one another.
//   - Bad rows never stop the capture. A journal row that cannot be turned
//     into a record (unknown table, malformed JSON, a value that does not fit
//     its column) goes to alertsync.dlq (stage capture.nomis, the reason
//     without any value, the whole journal row as the value, offset = the
//     journal id) and leaves the journal only once that entry is
//     acknowledged. Logs name tables, journal ids and alert keys, never
//     values: alert comments are personal data.
//   - One writer. The capture holds a database lock for its life (stand-in:
//     a session advisory lock); a second process exits with ErrLocked, or
//     waits with capture.lock_wait.
//
// NOMIS, Kafka or the registry being away is retried with backoff and
// logged; the process exits non-zero only for what a human must fix: the
// lock held by another capture, a missing journal with capture.migrate
// false (run `alertsync migrate nomis`), missing NOMIS tables, commit order
// not recorded, an incompatible schema, a record Kafka refuses.
//
// All SQL is in the Dialect: postgres.go for the PostgreSQL stand-in of
// NOMIS, oracle.go for Oracle (through godror; never run against a live
// Oracle in this project's tests, which check its statements against a
// recording driver).
package nomis
