// Package dlq is `alertsync dlq list` and `alertsync dlq redrive`: the
// operator's view of alertsync.dlq and the way back out of it for the
// applies (DESIGN.md guarantee 5).
//
// Data flow. An apply that cannot apply a command (DPS or NOMIS refuses it)
// records it FAILED and starts a hold on its alert in its target database
// (alertsync.dlq_holds in DPS; in NOMIS alertsync.alertsync_dlq_holds on the
// PostgreSQL stand-in, OMS_OWNER.ALERTSYNC_DLQ_HOLDS on Oracle); every
// later command of that alert is SKIPPED held while the hold is open. The
// apply's relay publishes each of them, failed or held, from its outbox to
// alertsync.dlq with the original topic, partition, offset, key and value,
// the stage (apply-dps, apply-nomis), the alert key and, for a held one, the
// id of the command it is held behind.
//
// List reads alertsync.dlq (topics.prefix applies) from its start up to the
// last stable offsets taken when it starts (read committed, so records of
// aborted transactions are never shown) and prints one line per entry. It
// never prints key or value bytes (the value holds alert text): only their
// sizes. For the apply stages it also says whether the entry's hold is
// still open, when the target database can be reached.
//
// Redrive, for each open hold of one apply stage (one alert key, or all),
// takes the entries of the hold's current episode in DLQ order: the last
// failed entry of the hold's first command, then the entries held behind
// it; an episode whose entries are not all in the DLQ yet (the relay has
// not published them) is left alone. It then deletes the hold row –
// conditionally on the hold being unchanged since it was read, so that a
// command held meanwhile is never left behind – and produces each entry's
// original key and value, in order, synchronously, with an idempotent
// producer, to its original topic and partition, with one header,
// alertsync-redriven-from: <dlq topic>/<partition>/<offset>. If producing
// fails, the hold row is put back so that nothing overtakes the commands
// not redriven.
//
// Safety of repeating. A redriven command that fails again starts a new
// hold (the apply does that), and the commands after it are held again;
// the applies keep the newest source position applied per alert, so a
// command redriven twice, or after a newer command of the same alert, is a
// no-op (SKIPPED stale_position). Only the apply stages are redriven; the
// transform and capture stages are refused (not supported yet).
//
// Holds. The holds table is reached through holdStore, one statement per
// call, each committed on its own: pgHolds (pgx) for DPS and the NOMIS
// stand-in (nomis.dialect = postgres), oraHolds (godror through
// database/sql, every statement a constant of oracle.go) for NOMIS on
// Oracle (nomis.dialect = oracle). Both delete a hold only while it is as
// read, wait for an apply's uncommitted change to the row and decide on
// the committed row, and put a hold back only where the apply has not
// started a new one. The Oracle store is NOT RUN AGAINST A LIVE ORACLE: its
// tests run it against a recording driver (internal/testenv/orafake).
package dlq
