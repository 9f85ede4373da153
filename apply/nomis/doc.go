// Package nomis is `alertsync apply nomis`: it writes the commands of
// alertsync.commands.nomis (changes made in DPS, already mapped to NOMIS's
// model by the transformer) into OMS_OWNER.OFFENDER_ALERTS the way a NOMIS
// writer would, marked as the sync.
//
// Dialects (nomis.dialect): the command logic (store.go, writes.go) and
// the sweep's scheduling (sweep.go) are written once over a small dialect
// interface (dialect.go) that holds every statement: postgres, the
// PostgreSQL-hosted NOMIS stand-in through pgx (standin.go), and oracle,
// NOMIS on Oracle through database/sql and godror (oracle.go), where every
// statement is a constant of that one file. The Oracle dialect has NOT
// BEEN RUN AGAINST A LIVE ORACLE: its tests check each statement against a
// recording driver (oracle_test.go). What follows says "the stand-in"
// where the dialects differ; oracle.go says what Oracle does instead.
//
// Contract (DESIGN.md guarantees 1-5, "The mapping"):
//
//   - One database transaction per batch of one partition's commands. It
//     starts by marking itself as the sync before any write: on the
//     stand-in the session settings nomis.audit_module_name =
//     'DPS_SYNCHRONISATION' and, per command, nomis.audit_user_id = the
//     command's user, set transaction-locally; on Oracle the session's
//     module (DBMS_APPLICATION_INFO) and NOMIS's audit context. NOMIS's audit triggers stamp the rows with them and
//     the journal trigger (migration 0010) records the module, so capture
//     nomis publishes these changes with source.sync = true and the
//     transformer does not send them back. The transaction ends with the
//     partition's next offset stored in alertsync.alertsync_consumer_offsets
//     under the fence epoch taken when the partition was assigned: a zombie
//     apply cannot commit (apply.ErrFenced). A restarted apply resumes from
//     the stored offsets.
//   - Keys: the command's DPS id resolves through
//     alertsync.alertsync_alert_mapping to (OFFENDER_BOOK_ID, ALERT_SEQ);
//     when that mapping has no row, the NOMIS key the command carries, else
//     the one the DPS-side mapping (alertsync.alert_mapping in the DPS
//     database, dps.dsn, read-only; apply_nomis.dps_lookup) holds for an
//     alert that came from NOMIS, is used (and mapped NOMIS_CREATED). The mapping keeps the newest
//     DPS position applied per alert: an older or repeated command is
//     SKIPPED stale_position.
//   - UPSERT of an unmapped alert inserts it on the prisoner's current
//     booking (BOOKING_SEQ = 1) with ALERT_SEQ = 1 + the highest sequence
//     the booking has in OFFENDER_ALERTS or has ever had in the mapping, so
//     a sequence is never reused; the booking row is locked first (FOR NO
//     KEY UPDATE on the stand-in, FOR UPDATE on Oracle), and an insert that
//     still collides with a NOMIS user who did not lock it (ON CONFLICT on
//     the stand-in, ORA-00001 on Oracle) takes the next sequence. The mapping row is DPS_CREATED.
//     No current booking: FAILED no_current_booking. An alert whose NOMIS
//     row is gone (deleted in NOMIS, or by an earlier DELETE) is inserted
//     again under a new sequence and its mapping moves there.
//   - UPSERT of a mapped alert compares the command's before-image with the
//     row (type and code, dates, status, comment, authorised by): equal or
//     no before-image, the row is updated (MODIFY_USER_ID, MODIFY_DATETIME),
//     or SKIPPED unchanged when it already holds the after-image. DELETE
//     deletes the row (hard delete, as NOMIS does) and marks the mapping
//     deleted (deleted_at) with the position; an alert never mapped is
//     SKIPPED unknown_alert, one already gone SKIPPED already_deleted.
//   - Conflicts (guarantee 4): when the before-image differs from the row,
//     the later commit wins and ties go to DPS: the command wins when its
//     source commit time is at or after the row's, which is, on the
//     stand-in, pg_xact_commit_timestamp of the row's last change
//     (track_commit_timestamp must be on, checked at start), and on Oracle
//     the latest of the row's audit times (oracle.go says why). A lost command
//     is CONFLICT conflict_lost and leaves the row as it is; a won one is
//     APPLIED conflict_won. Each decision is a row of
//     alertsync.alertsync_conflicts.
//   - Every command gets one outcome, collected for the batch and written
//     as ONE row of alertsync.alertsync_outcome_batches (Oracle:
//     ALERTSYNC_OUTCOME_BATCHES; apply.EncodeOutbox) in the same
//     transaction, just before the fenced offset; the shared relay
//     (apply.Runner) publishes them to alertsync.outcomes, and the DLQ
//     entries of FAILED and held commands to alertsync.dlq, then deletes
//     the row.
//   - A command NOMIS refuses (no current booking, unknown code, a value
//     too long) is rolled back alone (savepoint), recorded FAILED with its
//     DLQ entry, and holds later commands of the same alert
//     (alertsync.alertsync_dlq_holds): each is SKIPPED held, in the DLQ too.
//   - The expiry sweep (sweep.go; DOMAIN.md, "Where we go beyond"): a DPS
//     alert lapses when its active_to passes, with no change to its row,
//     so no command tells NOMIS. Daily at apply_nomis.sweep_at (HH:MM in
//     apply.timezone; default 02:00; apply_nomis.sweep, default on) and on
//     demand (`alertsync apply nomis --sweep-now`), the sweep reads from
//     DPS (read-only) the alerts not deleted whose active_to is on or
//     before today in apply.timezone, finds each one's row through the
//     NOMIS-side mapping (not deleted), else the DPS-side mapping (unless
//     the NOMIS-side mapping gives that key to another alert), and sets
//     ALERT_STATUS = 'INACTIVE' (EXPIRY_DATE = active_to where NOMIS has
//     none; MODIFY_USER_ID = DPS_SYNCHRONISATION) on rows still ACTIVE
//     whose EXPIRY_DATE is not later than today (a NOMIS user's extension
//     stands). Transactions of apply_nomis.sweep_batch alerts (default 500)
//     are marked as the sync (module and user DPS_SYNCHRONISATION), so
//     capture nomis publishes them with source.sync = true and they do
//     not come back to DPS. Idempotent: a second sweep changes nothing. No
//     outcome, mapping or position is written (it is not a command). A
//     failed sweep is logged and counted, and runs again at the next
//     scheduled time; stopping the apply stops it.
//
// Alert text (COMMENT_TEXT) is personal data: it is written, never logged.
package nomis
