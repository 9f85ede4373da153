// Package rules is the pure mapping of the transformer (issue 6): it turns
// one decoded source record into at most one command for the opposite
// side's apply. No I/O, no Kafka, no database, no clock: everything a rule
// needs is in the record, the reference data (Codes) and the time zone
// given to New. The stream loop decodes Avro into the input types
// (NOMISAlertChange, NOMISSnapshot, DPSAlertChange), calls NOMISAlert,
// NOMISSnapshot or DPSAlert, and then
//
//   - produces the Command to Command.Target's topic (alertsync.commands.dps
//     or alertsync.commands.nomis), keyed by Command.PrisonNumber, or
//   - counts the Drop reason and produces nothing, or
//   - sends the original record to alertsync.dlq with the *Error's Stage
//     (StageTransform), ErrorKindMapping and Error() text. Error texts name
//     fields, ops, codes and keys, never alert text.
//
// Command ids are deterministic (CommandID: UUIDv5 of origin side, source
// position, kind and alert key), so a record consumed twice yields the same
// command id (DESIGN.md guarantee 2).
//
// # Rules
//
//	record                                  command / outcome
//	─────────────────────────────────────── ──────────────────────────────────────────
//	any source.sync = true                  Drop sync (no loops)
//	NOMIS c with OMKCOPY.COPY_BOOKING_DATA  Drop booking_copy (the snapshot carries it)
//	NOMIS booking_seq ≠ 1 or unknown        Drop not_current_booking
//	NOMIS c, u, r                           UPSERT to DPS (keys: booking, seq, DPS id if mapped)
//	NOMIS d                                 DELETE to DPS, with the before-image
//	NOMIS prisoner snapshot                 one REPLACE_PRISONER to DPS (reason = snapshot
//	                                        reason; no alerts for a merged-away number)
//	DPS c, u, r                             UPSERT to NOMIS (DPS id; apply uses the current booking)
//	DPS deleted_at set (soft delete)        DELETE to NOMIS
//	DPS d (hard delete)                     DELETE to NOMIS
//	DPS u of an already soft-deleted alert  Drop unchanged
//	u changing no carried field             Drop unchanged
//	t, unknown op, missing image            DLQ unsupported_op / missing_image
//	NOMIS code not in Codes (c/u/r, snapshot) the command with the row's ALERT_TYPE (apply
//	                                        dps refuses a code DPS lacks, and holds); no
//	                                        type: DLQ unknown_code
//	DPS code id not in Codes                DLQ unknown_code
//	no prison number                        DLQ missing_prison_number
//	missing/out-of-range date or ts_ms      DLQ malformed_date
//	ALERT_STATUS not ACTIVE/INACTIVE        DLQ malformed_status
//	COMMENT_TEXT > 4000 characters (after)  DLQ text_too_long
//
// Fields, NOMIS → DPS: ALERT_CODE → code; ALERT_TYPE → type_code (the
// code's type when empty); ALERT_DATE, EXPIRY_DATE (timestamps of the
// Europe/London wall clock) → active_from, active_to as London dates, time
// of day dropped; ALERT_STATUS → status; COMMENT_TEXT → description;
// AUTHORIZE_PERSON_TEXT → authorised_by; CASELOAD_ID → prison_code;
// CREATE_USER_ID/CREATE_DATETIME → created_by/at, MODIFY_USER_ID/DATETIME
// → modified_by/at (the session user and the commit time when an update
// lacks them; the session user when CREATE_USER_ID is empty).
//
// INACTIVE without EXPIRY_DATE: the change that makes the alert so (an
// insert, or an update from any other state) sets active_to to the London
// date of its commit. Where the record does not show when the alert ended
// (an update of an alert already INACTIVE without expiry, an initial-load
// r record, a snapshot alert, a before-image) the state is status INACTIVE
// with active_to null, meaning "ended on a date NOMIS does not hold": apply
// dps keeps the alert's active_to when it has one on or before the command's
// commit date, else sets that date. This keeps active_to from moving on
// every later edit or resync.
//
// Fields, DPS → NOMIS: alert_code_id → code and type_code through Codes;
// active_from/active_to unchanged; status ACTIVE when active_to is null or
// after the London date of the commit, else INACTIVE; description cut to
// 4000 UTF-8 bytes and authorised_by to 40 on a rune boundary (TruncateUTF8),
// empty text as null (Oracle stores ” as NULL); prison_code_when_created →
// prison_code; created_at, last_modified_at → created_at, modified_at; the
// change's user (DPSAlertChange.User, from audit_event: the alert record
// has none; UnknownDPSUser when unknown) → created_by, and modified_by on
// an update, shortened by ShortenUser. Before-images from DPS carry no user.
//
// Accepted as NOMIS accepts them: duplicate active codes, active_to before
// active_from, deactivated codes.
//
// # User ids
//
// NOMIS user columns hold 32 bytes, DPS user names up to 64 characters.
// ShortenUser keeps an id of at most 32 bytes as it is; a longer one becomes
// its first 23 bytes (cut back to a rune boundary), "~", and the first 8 hex
// digits of the SHA-256 of the whole id: readable, deterministic, and
// distinct for ids that share their first 23 bytes.
//
// # Lossy fields
//
// A NOMIS alert mapped to DPS and back (FuzzRoundTrip) keeps its code,
// type, alert and expiry dates, status, comment, authorised-by, caseload,
// creating user and create time. It loses: the time of day of ALERT_DATE
// and EXPIRY_DATE; a missing EXPIRY_DATE of an INACTIVE alert (comes back
// as the commit date); an ALERT_STATUS that disagrees with EXPIRY_DATE (DPS
// derives status from active_to); OFFENDER_BOOK_ID and ALERT_SEQ (linked by
// the mapping; apply nomis allocates new sequences); VERIFIED_FLAG,
// CASELOAD_TYPE, ROOT_OFFENDER_ID, CREATE_DATE and the AUDIT_* columns;
// MODIFY_USER_ID/MODIFY_DATETIME through the alert row (DPS keeps them in
// audit_event). DPS → NOMIS further loses description beyond 4000 bytes,
// authorised_by beyond 40 bytes, empty-versus-null text and user ids
// longer than 32 bytes.
package rules
