package nomis

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/godror/godror"

	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/migrate"
)

// oracle is the dialect of NOMIS on Oracle, through godror, with the
// sync-owned objects of deploy/oracle/migrations in the NOMIS schema
// OMS_OWNER. Every statement the capture runs on Oracle is one of the
// constants below. NOTHING HERE HAS BEEN RUN AGAINST A LIVE ORACLE in this
// project's CI (see deploy/oracle/README.md); oracle_test.go checks each
// statement's binds, select lists and use against a recording driver.
//
// Position of a journal row: (ORA_ROWSCN, JOURNAL_ID), the journal having
// ROWDEPENDENCIES (so ORA_ROWSCN is the commit SCN of the row's
// transaction). There is no wake-up: Listen returns nil and the capture
// polls between capture.poll_min and capture.poll_max.
//
// Id lists: every list of ids or keys travels as ONE collection bind, a
// JSON array in a temporary CLOB unnested with JSON_TABLE (oraJSON), never
// as an IN list of binds: no 1000-element IN limit, no bind-count limit, one
// round trip whatever the batch size, and every statement stays a constant.
type oracle struct {
	opts Options
}

func newOracle(o Options) *oracle { return &oracle{opts: o} }

// Objects and names.
const (
	// oraJournal is the journal's qualified name (JournalTable).
	oraJournal = "OMS_OWNER.ALERTSYNC_JOURNAL"
	// oraLockName is the DBMS_LOCK user lock of the capture, one per
	// database (the journal is per database).
	oraLockName = "ALERTSYNC_CAPTURE_NOMIS"
	// oraInitialLoadName is ALERTSYNC_CAPTURE_STATE.NAME of the initial load.
	oraInitialLoadName = "initial_load"
	// oraTimeFormat is how a time travels inside a JSON bind (Go layout)
	// and oraTimeModel how Oracle reads it back (TO_TIMESTAMP_TZ), to the
	// microsecond as TIMESTAMP WITH TIME ZONE keeps it.
	oraTimeFormat = "2006-01-02T15:04:05.000000-07:00"
)

// Fragments of the statements below (not statements themselves).
const (
	// oraWriterStart is the journal-writers horizon of
	// deploy/oracle/journal_read.sql: the lowest START_SCN of the active
	// transactions holding a lock on the journal (that have journalled rows
	// and not committed), NULL when there is none. A row whose ORA_ROWSCN
	// is below it can no longer be preceded, in commit order, by a row that
	// is not visible yet. GV$ covers every RAC instance.
	oraWriterStart = `journal_writer_start AS (
    SELECT MIN(t.START_SCN) AS START_SCN
      FROM GV$TRANSACTION t
      JOIN GV$LOCKED_OBJECT l
        ON l.INST_ID = t.INST_ID
       AND l.XIDUSN = t.XIDUSN
       AND l.XIDSLOT = t.XIDSLOT
       AND l.XIDSQN = t.XIDSQN
     WHERE l.OBJECT_ID = (SELECT o.OBJECT_ID
                            FROM ALL_OBJECTS o
                           WHERE o.OWNER = 'OMS_OWNER'
                             AND o.OBJECT_NAME = 'ALERTSYNC_JOURNAL'
                             AND o.OBJECT_TYPE = 'TABLE'))`

	// oraIDs unnests the JSON array of numbers bound at :1.
	oraIDs = `SELECT t.ID FROM JSON_TABLE(:1, '$[*]' COLUMNS (ID NUMBER(19) PATH '$')) t`

	// oraAlertImage is an OFFENDER_ALERTS row (alias a) as the journal
	// trigger ALERTSYNC_ALERTS_JNL images it (deploy/oracle/migrations/0002):
	// the same keys, columns and order, NULL ON NULL, RETURNING CLOB, so
	// the same value formats (DATE and TIMESTAMP as ISO 8601 without zone).
	oraAlertImage = `JSON_OBJECT(
                   'alert_date' VALUE a.ALERT_DATE,
                   'offender_book_id' VALUE a.OFFENDER_BOOK_ID,
                   'root_offender_id' VALUE a.ROOT_OFFENDER_ID,
                   'alert_seq' VALUE a.ALERT_SEQ,
                   'alert_type' VALUE a.ALERT_TYPE,
                   'alert_code' VALUE a.ALERT_CODE,
                   'authorize_person_text' VALUE a.AUTHORIZE_PERSON_TEXT,
                   'create_date' VALUE a.CREATE_DATE,
                   'alert_status' VALUE a.ALERT_STATUS,
                   'verified_flag' VALUE a.VERIFIED_FLAG,
                   'expiry_date' VALUE a.EXPIRY_DATE,
                   'comment_text' VALUE a.COMMENT_TEXT,
                   'caseload_id' VALUE a.CASELOAD_ID,
                   'modify_user_id' VALUE a.MODIFY_USER_ID,
                   'modify_datetime' VALUE a.MODIFY_DATETIME,
                   'caseload_type' VALUE a.CASELOAD_TYPE,
                   'create_datetime' VALUE a.CREATE_DATETIME,
                   'create_user_id' VALUE a.CREATE_USER_ID,
                   'audit_timestamp' VALUE a.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE a.AUDIT_USER_ID,
                   'audit_module_name' VALUE a.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE a.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE a.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE a.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE a.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)`

	// oraCurrentAlertsFrom is the current booking (BOOKING_SEQ = 1) of
	// each prisoner with its alerts, if any (outer join: a booking without
	// alerts is one row with NULL alert columns) and their mappings.
	oraCurrentAlertsFrom = `SELECT o.OFFENDER_ID_DISPLAY, b.OFFENDER_BOOK_ID,
       CASE WHEN a.ALERT_SEQ IS NULL THEN NULL ELSE ` + oraAlertImage + ` END AS ALERT_ROW,
       m.DPS_ALERT_ID
  FROM OMS_OWNER.OFFENDERS o
  JOIN OMS_OWNER.OFFENDER_BOOKINGS b
    ON b.OFFENDER_ID = o.OFFENDER_ID
   AND b.BOOKING_SEQ = 1
  LEFT JOIN OMS_OWNER.OFFENDER_ALERTS a
    ON a.OFFENDER_BOOK_ID = b.OFFENDER_BOOK_ID
  LEFT JOIN OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
    ON m.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID
   AND m.ALERT_SEQ = a.ALERT_SEQ
   AND m.DELETED_AT IS NULL
`
	oraCurrentAlertsOrder = `
 ORDER BY o.OFFENDER_ID_DISPLAY, b.OFFENDER_BOOK_ID, a.ALERT_SEQ`

	// oraResyncs unnests the JSON array of resyncs bound at :1
	// ({"offender_no", "due_at" in oraTimeFormat, "reason"}).
	oraResyncs = `SELECT s.OFFENDER_NO,
               TO_TIMESTAMP_TZ(s.DUE_AT, 'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM') AS DUE_AT,
               s.REASON
          FROM JSON_TABLE(:1, '$[*]' COLUMNS (
                   OFFENDER_NO VARCHAR2(10 CHAR) PATH '$.offender_no',
                   DUE_AT      VARCHAR2(40)      PATH '$.due_at',
                   REASON      VARCHAR2(30 CHAR) PATH '$.reason')) s`
)

// The statements. Binds are positional (:1, :2, … each once, in order: OCI
// binds SQL placeholders by position of occurrence).
const (
	// oraTryLockSQL requests the capture's user lock for the session
	// (release_on_commit FALSE) without waiting. :1 lock name, :2 out
	// status: 0 granted, 1 held elsewhere, 4 held by this session.
	// ALLOCATE_UNIQUE commits: run outside a transaction.
	oraTryLockSQL = `DECLARE
    v_handle VARCHAR2(128);
BEGIN
    DBMS_LOCK.ALLOCATE_UNIQUE(lockname => :1, lockhandle => v_handle);
    :2 := DBMS_LOCK.REQUEST(lockhandle => v_handle, lockmode => DBMS_LOCK.X_MODE,
                            timeout => 0, release_on_commit => FALSE);
END;`

	// oraUnlockSQL releases it. :1 lock name, :2 out status: 0 released,
	// 4 not held.
	oraUnlockSQL = `DECLARE
    v_handle VARCHAR2(128);
BEGIN
    DBMS_LOCK.ALLOCATE_UNIQUE(lockname => :1, lockhandle => v_handle);
    :2 := DBMS_LOCK.RELEASE(lockhandle => v_handle);
END;`

	// oraLockHolderSQL lists the sessions holding the user lock named :1.
	oraLockHolderSQL = `SELECT s.INST_ID, s.SID, s.SERIAL#, s.USERNAME, s.MACHINE, s.PROGRAM
  FROM GV$LOCK l
  JOIN GV$SESSION s
    ON s.INST_ID = l.INST_ID
   AND s.SID = l.SID
 WHERE l.TYPE = 'UL'
   AND l.LMODE > 1
   AND l.ID1 = (SELECT a.LOCKID FROM SYS.DBMS_LOCK_ALLOCATED a WHERE a.NAME = :1)
 ORDER BY s.INST_ID, s.SID`

	// oraMigrateCheckSQL returns the session's current schema (the
	// migrations create unqualified names there: it must be OMS_OWNER)
	// and, comma-separated, which NOMIS tables exist.
	oraMigrateCheckSQL = `SELECT SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'),
       (SELECT LISTAGG(t.TABLE_NAME, ',') WITHIN GROUP (ORDER BY t.TABLE_NAME)
          FROM ALL_TABLES t
         WHERE t.OWNER = 'OMS_OWNER'
           AND t.TABLE_NAME IN ('OFFENDERS', 'OFFENDER_BOOKINGS', 'OFFENDER_ALERTS'))
  FROM DUAL`

	// oraCheckSQL returns the database name, the journal's DEPENDENCIES
	// (ENABLED with ROWDEPENDENCIES; NULL when the journal is missing or
	// not granted) and how many of the other capture tables the session
	// sees (3 when migrated and granted).
	oraCheckSQL = `SELECT SYS_CONTEXT('USERENV', 'DB_NAME'),
       (SELECT MAX(t.DEPENDENCIES)
          FROM ALL_TABLES t
         WHERE t.OWNER = 'OMS_OWNER'
           AND t.TABLE_NAME = 'ALERTSYNC_JOURNAL'),
       (SELECT COUNT(*)
          FROM ALL_TABLES t
         WHERE t.OWNER = 'OMS_OWNER'
           AND t.TABLE_NAME IN ('ALERTSYNC_ALERT_MAPPING', 'ALERTSYNC_RESYNC', 'ALERTSYNC_CAPTURE_STATE'))
  FROM DUAL`

	// oraKeysSQL is journal_read.sql without the row contents: the
	// positions of up to :1 rows below the journal-writers horizon, in
	// commit order. The commit time is the latest CREATED_AT of the
	// row's commit (see Keys).
	oraKeysSQL = `WITH ` + oraWriterStart + `
SELECT k.JOURNAL_ID, k.COMMIT_SCN, k.COMMIT_TIME
  FROM (SELECT j.JOURNAL_ID, j.ORA_ROWSCN AS COMMIT_SCN,
               MAX(j.CREATED_AT) OVER (PARTITION BY j.ORA_ROWSCN) AS COMMIT_TIME
          FROM OMS_OWNER.ALERTSYNC_JOURNAL j
         CROSS JOIN journal_writer_start h
         WHERE h.START_SCN IS NULL OR j.ORA_ROWSCN < h.START_SCN) k
 ORDER BY k.COMMIT_SCN, k.JOURNAL_ID
 FETCH FIRST :1 ROWS ONLY`

	// oraRowsSQL reads the journal rows of the ids in :1.
	oraRowsSQL = `SELECT j.JOURNAL_ID, j.TABLE_NAME, j.OPERATION, j.OLD_ROW, j.NEW_ROW,
       j.MODULE_NAME, j.ADDITIONAL_INFO, j.USER_ID, j.TXID
  FROM OMS_OWNER.ALERTSYNC_JOURNAL j
 WHERE j.JOURNAL_ID IN (` + oraIDs + `)`

	// oraAlertContextsSQL looks up the booking and mapping of each
	// [booking id, alert seq] pair of the JSON array in :1.
	oraAlertContextsSQL = `SELECT k.BOOK, k.SEQ, o.OFFENDER_ID_DISPLAY, b.BOOKING_SEQ, m.DPS_ALERT_ID
  FROM JSON_TABLE(:1, '$[*]' COLUMNS (BOOK NUMBER(10) PATH '$[0]', SEQ NUMBER(6) PATH '$[1]')) k
  LEFT JOIN OMS_OWNER.OFFENDER_BOOKINGS b
    ON b.OFFENDER_BOOK_ID = k.BOOK
  LEFT JOIN OMS_OWNER.OFFENDERS o
    ON o.OFFENDER_ID = b.OFFENDER_ID
  LEFT JOIN OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
    ON m.OFFENDER_BOOK_ID = k.BOOK
   AND m.ALERT_SEQ = k.SEQ
   AND m.DELETED_AT IS NULL`

	// oraDeleteSQL deletes the published journal rows of the ids in :1.
	oraDeleteSQL = `DELETE FROM OMS_OWNER.ALERTSYNC_JOURNAL
 WHERE JOURNAL_ID IN (` + oraIDs + `)`

	// oraMergeResyncsSQL records the resyncs in :1 (one per prison number):
	// new ones as pending, known ones with the later due time and their
	// first reason.
	oraMergeResyncsSQL = `MERGE INTO OMS_OWNER.ALERTSYNC_RESYNC r
USING (` + oraResyncs + `) n
   ON (r.OFFENDER_NO = n.OFFENDER_NO)
 WHEN MATCHED THEN UPDATE SET r.DUE_AT = GREATEST(r.DUE_AT, n.DUE_AT)
 WHEN NOT MATCHED THEN INSERT (OFFENDER_NO, DUE_AT, REASON) VALUES (n.OFFENDER_NO, n.DUE_AT, n.REASON)`

	oraPendingResyncsSQL = `SELECT r.OFFENDER_NO, r.DUE_AT, r.REASON
  FROM OMS_OWNER.ALERTSYNC_RESYNC r
 ORDER BY r.DUE_AT, r.OFFENDER_NO`

	// oraDoneResyncsSQL removes the resyncs in :1 whose due time is still
	// the one given.
	oraDoneResyncsSQL = `DELETE FROM OMS_OWNER.ALERTSYNC_RESYNC r
 WHERE (r.OFFENDER_NO, r.DUE_AT) IN (SELECT n.OFFENDER_NO, n.DUE_AT FROM (` + oraResyncs + `) n)`

	// oraRequestResyncsSQL journals the resync requests of the JSON array
	// in :1 (their NEW_ROW objects), in order, with MODULE_NAME :2, through
	// the procedure of migration 0010 (the only way the redrive's user may
	// write to the journal), which fails unless it wrote :3 rows.
	oraRequestResyncsSQL = `BEGIN OMS_OWNER.ALERTSYNC_REQUEST_RESYNCS(:1, :2, :3); END;`

	// oraPrisonNumbersSQL returns OFFENDER_ID_DISPLAY of the offender ids
	// in :1.
	oraPrisonNumbersSQL = `SELECT o.OFFENDER_ID, o.OFFENDER_ID_DISPLAY
  FROM OMS_OWNER.OFFENDERS o
 WHERE o.OFFENDER_ID IN (` + oraIDs + `)
   AND o.OFFENDER_ID_DISPLAY IS NOT NULL`

	// oraCurrentSCNSQL is the database's current SCN, read just before a
	// snapshot transaction starts (so at or below the snapshot's SCN).
	oraCurrentSCNSQL = `SELECT DBMS_FLASHBACK.GET_SYSTEM_CHANGE_NUMBER FROM DUAL`

	// oraSnapshotPositionSQL, inside the snapshot transaction, turns the
	// SCN :1 read before it into the snapshot's position: the SCN, lowered
	// below the journal-writers horizon when a journal writer started at or
	// before it (its rows, invisible to the snapshot, commit above
	// START_SCN - 1); the greatest journal id the snapshot sees at that SCN
	// (0 if none); and the time of the snapshot.
	oraSnapshotPositionSQL = `WITH ` + oraWriterStart + `,
     snap AS (SELECT CAST(:1 AS NUMBER) AS SCN FROM DUAL),
     pos AS (SELECT CASE WHEN h.START_SCN <= s.SCN THEN h.START_SCN - 1 ELSE s.SCN END AS SCN
               FROM snap s
              CROSS JOIN journal_writer_start h)
SELECT p.SCN,
       (SELECT NVL(MAX(j.JOURNAL_ID), 0) FROM OMS_OWNER.ALERTSYNC_JOURNAL j WHERE j.ORA_ROWSCN = p.SCN),
       SYSTIMESTAMP
  FROM pos p`

	// oraSnapshotJournalSQL lists the journal rows the transaction sees.
	oraSnapshotJournalSQL = `SELECT j.JOURNAL_ID FROM OMS_OWNER.ALERTSYNC_JOURNAL j ORDER BY j.JOURNAL_ID`

	// oraCurrentAlertsSQL reads every prisoner with a current booking.
	oraCurrentAlertsSQL = oraCurrentAlertsFrom + ` WHERE o.OFFENDER_ID_DISPLAY IS NOT NULL` + oraCurrentAlertsOrder

	// oraCurrentAlertsOfSQL reads the prisoners whose prison numbers are
	// the JSON array of strings in :1.
	oraCurrentAlertsOfSQL = oraCurrentAlertsFrom + ` WHERE o.OFFENDER_ID_DISPLAY IN (
       SELECT n.PRISON_NO FROM JSON_TABLE(:1, '$[*]' COLUMNS (PRISON_NO VARCHAR2(10 CHAR) PATH '$')) n)` + oraCurrentAlertsOrder

	// oraInitialLoadSQL reads the state row named :1.
	oraInitialLoadSQL = `SELECT s.POSITION_COMMIT, s.POSITION_CHANGE, s.ALERTS, s.PRISONERS, s.COMPLETED_AT
  FROM OMS_OWNER.ALERTSYNC_CAPTURE_STATE s
 WHERE s.NAME = :1`

	// oraRecordInitialLoadSQL writes it: :1 name, :2 position commit, :3
	// position change, :4 alerts, :5 prisoners, :6 completed at.
	oraRecordInitialLoadSQL = `MERGE INTO OMS_OWNER.ALERTSYNC_CAPTURE_STATE s
USING (SELECT :1 AS NAME, :2 AS POSITION_COMMIT, :3 AS POSITION_CHANGE, :4 AS ALERTS, :5 AS PRISONERS,
              :6 AS COMPLETED_AT
         FROM DUAL) n
   ON (s.NAME = n.NAME)
 WHEN MATCHED THEN UPDATE SET s.POSITION_COMMIT = n.POSITION_COMMIT, s.POSITION_CHANGE = n.POSITION_CHANGE,
                              s.ALERTS = n.ALERTS, s.PRISONERS = n.PRISONERS, s.COMPLETED_AT = n.COMPLETED_AT
 WHEN NOT MATCHED THEN INSERT (NAME, POSITION_COMMIT, POSITION_CHANGE, ALERTS, PRISONERS, COMPLETED_AT)
      VALUES (n.NAME, n.POSITION_COMMIT, n.POSITION_CHANGE, n.ALERTS, n.PRISONERS, n.COMPLETED_AT)`

	// oraBacklogSQL counts the journal and its oldest change time.
	oraBacklogSQL = `SELECT COUNT(*), MIN(j.CREATED_AT) FROM OMS_OWNER.ALERTSYNC_JOURNAL j`
)

// DBMS_LOCK.REQUEST and RELEASE results.
const (
	oraLockGranted  = 0
	oraLockTimeout  = 1
	oraLockOwnedNot = 4 // REQUEST: already held by this session; RELEASE: not held
)

// errOracleSchema: the migrations would run in a schema other than
// OMS_OWNER. Permanent.
var errOracleSchema = errors.New("the Oracle migrations must run as OMS_OWNER")

func (*oracle) Name() string         { return "oracle" }
func (*oracle) JournalTable() string { return oraJournal }

// Open returns a godror handle on cfg.DSN with cfg.Password (see
// db.OracleParams for the DSN forms). godror connects in the calling
// goroutine and does not give up on a context deadline while the network
// stalls: bound the connect with Oracle Net's own timeout (Easy Connect
// "?connect_timeout=30" or CONNECT_TIMEOUT in tnsnames.ora) as well as
// capture.connect_timeout.
func (*oracle) Open(cfg config.NOMIS) (*sql.DB, error) {
	h, err := db.OracleDB(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	// The session connection, the migrator's, and one spare.
	h.SetMaxOpenConns(3)
	h.SetMaxIdleConns(1)
	return h, nil
}

func (*oracle) TryLock(ctx context.Context, conn *sql.Conn) (bool, string, error) {
	for vanished := 0; ; vanished++ {
		var status int64
		if _, err := conn.ExecContext(ctx, oraTryLockSQL, oraLockName, sql.Out{Dest: &status}); err != nil {
			return false, "", fmt.Errorf("taking the capture lock %s: %w", oraLockName, err)
		}
		switch status {
		case oraLockGranted, oraLockOwnedNot:
			return true, "", nil
		case oraLockTimeout:
		default:
			return false, "", fmt.Errorf("taking the capture lock %s: DBMS_LOCK.REQUEST returned %d", oraLockName, status)
		}
		holder, err := lockHolder(ctx, conn)
		if err != nil {
			return false, "", err
		}
		if holder != "" || vanished >= 5 {
			return false, holder, nil
		}
		// Released since the request (a holder that has just exited): try
		// again.
	}
}

// lockHolder describes the sessions holding the capture lock, "" when none
// does. Without the grants on GV$LOCK, GV$SESSION and DBMS_LOCK_ALLOCATED
// (install/capture_user.sql) it says which grants would name it.
func lockHolder(ctx context.Context, conn *sql.Conn) (string, error) {
	rows, err := conn.QueryContext(ctx, oraLockHolderSQL, oraLockName)
	if err != nil {
		if code, ok := db.OracleCode(err); ok && (code == 942 || code == 1031) {
			return "another session (grant SELECT on SYS.GV_$LOCK, SYS.GV_$SESSION and SYS.DBMS_LOCK_ALLOCATED to the capture user to name it)", nil
		}
		return "", fmt.Errorf("finding the holder of the capture lock: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var holders []string
	for rows.Next() {
		var (
			inst, sid, serial      int64
			user, machine, program sql.NullString
		)
		if err := rows.Scan(&inst, &sid, &serial, &user, &machine, &program); err != nil {
			return "", fmt.Errorf("finding the holder of the capture lock: %w", err)
		}
		holders = append(holders, fmt.Sprintf("session %d,%d on instance %d (user %s, program %s on %s)",
			sid, serial, inst, orUnknown(user), orUnknown(program), orUnknown(machine)))
	}
	if err := rows.Err(); err != nil {
		return "", fmt.Errorf("finding the holder of the capture lock: %w", err)
	}
	return strings.Join(holders, ", "), nil
}

func orUnknown(s sql.NullString) string {
	if !s.Valid || s.String == "" {
		return "unknown"
	}
	return s.String
}

func (*oracle) Unlock(ctx context.Context, conn *sql.Conn) error {
	var status int64
	if _, err := conn.ExecContext(ctx, oraUnlockSQL, oraLockName, sql.Out{Dest: &status}); err != nil {
		return fmt.Errorf("releasing the capture lock %s: %w", oraLockName, err)
	}
	if status != oraLockGranted && status != oraLockOwnedNot {
		return fmt.Errorf("releasing the capture lock %s: DBMS_LOCK.RELEASE returned %d", oraLockName, status)
	}
	return nil
}

// Migrate applies the Oracle migration set (deploy.OracleMigrations, set
// name "nomis") with the Oracle dialect of internal/migrate. The session
// must be OMS_OWNER's (the migrations create unqualified names, the
// triggers in the tables' schema): run `alertsync migrate nomis
// --nomis.dialect=oracle` as OMS_OWNER and the capture as its own user with
// capture.migrate=false.
func (*oracle) Migrate(ctx context.Context, h *sql.DB, log *slog.Logger) error {
	var (
		schema  sql.NullString
		present sql.NullString
	)
	if err := h.QueryRowContext(ctx, oraMigrateCheckSQL).Scan(&schema, &present); err != nil {
		return fmt.Errorf("checking the NOMIS tables: %w", err)
	}
	if !strings.EqualFold(schema.String, "OMS_OWNER") {
		return fmt.Errorf("%w (connected with current schema %s): run `alertsync migrate nomis --nomis.dialect=oracle` "+
			"connected as OMS_OWNER, then start the capture as its own user with capture.migrate=false", errOracleSchema, schema.String)
	}
	have := map[string]bool{}
	for _, t := range strings.Split(present.String, ",") {
		have[strings.TrimSpace(t)] = true
	}
	var missing []string
	for _, t := range []string{"OFFENDERS", "OFFENDER_BOOKINGS", "OFFENDER_ALERTS"} {
		if !have[t] {
			missing = append(missing, "OMS_OWNER."+t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s; the journal triggers go on them", ErrNoNOMISTables, strings.Join(missing, ", "))
	}
	set, err := migrate.Load("nomis", deploy.OracleMigrations())
	if err != nil {
		return fmt.Errorf("loading the Oracle nomis migrations: %w", err)
	}
	if _, err := migrate.Up(ctx, h, set, migrate.Latest, migrate.WithDialect(migrate.Oracle{}), migrate.WithLogger(log)); err != nil {
		return fmt.Errorf("applying the Oracle nomis migrations: %w", err)
	}
	return nil
}

func (*oracle) Check(ctx context.Context, conn *sql.Conn) (string, error) {
	var (
		name         sql.NullString
		dependencies sql.NullString
		others       int64
	)
	if err := conn.QueryRowContext(ctx, oraCheckSQL).Scan(&name, &dependencies, &others); err != nil {
		return "", fmt.Errorf("checking the journal: %w", err)
	}
	if !dependencies.Valid || others < 3 {
		return "", fmt.Errorf("%w (%s, ALERTSYNC_ALERT_MAPPING, ALERTSYNC_RESYNC, ALERTSYNC_CAPTURE_STATE; not there or not granted): "+
			"run `alertsync migrate nomis --nomis.dialect=oracle` as OMS_OWNER and deploy/oracle/install/capture_user.sql",
			ErrNoJournal, oraJournal)
	}
	if dependencies.String != "ENABLED" {
		return "", fmt.Errorf("%w: %s was created without ROWDEPENDENCIES, so ORA_ROWSCN is not each row's commit SCN; "+
			"it can only be set by CREATE TABLE: drop the empty journal and run the migrations again", ErrCommitOrder, oraJournal)
	}
	return name.String, nil
}

// Listen returns no Waiter: the Oracle journal has no wake-up, the capture
// polls.
func (*oracle) Listen(context.Context, *sql.Conn) (Waiter, error) { return nil, nil }

// Keys returns the journal positions below the journal-writers horizon in
// commit order (journal_read.sql). CommitTime is the latest CREATED_AT
// (SYSTIMESTAMP when the trigger fired) among the rows of the same commit
// SCN: the time of the transaction's last journalled change, at or just
// before its commit. SCN_TO_TIMESTAMP would be closer but fails
// (ORA-08181) on a backlog older than the database's SCN-to-time map.
func (*oracle) Keys(ctx context.Context, conn *sql.Conn, limit int) ([]JournalKey, error) {
	rows, err := conn.QueryContext(ctx, oraKeysSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the journal's commit order: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []JournalKey
	for rows.Next() {
		var k JournalKey
		if err := rows.Scan(&k.ID, &k.Commit, &k.CommitTime); err != nil {
			return nil, fmt.Errorf("reading the journal's commit order: %w", err)
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal's commit order: %w", err)
	}
	return out, nil
}

func (*oracle) Rows(ctx context.Context, conn *sql.Conn, ids []int64) ([]JournalRow, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	list, err := oraJSON(ids)
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	rows, err := conn.QueryContext(ctx, oraRowsSQL, list)
	if err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	defer func() { _ = rows.Close() }()
	out := make([]JournalRow, 0, len(ids))
	for rows.Next() {
		var (
			r        JournalRow
			old, new sql.NullString // CLOBs, fetched whole as text by godror
		)
		if err := rows.Scan(&r.ID, &r.Table, &r.Operation, &old, &new, &r.Module, &r.AdditionalInfo, &r.User,
			&r.TxID); err != nil {
			return nil, fmt.Errorf("reading the journal: %w", err)
		}
		if old.Valid {
			r.Old = []byte(old.String)
		}
		if new.Valid {
			r.New = []byte(new.String)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the journal: %w", err)
	}
	return out, nil
}

func (*oracle) AlertContexts(ctx context.Context, conn *sql.Conn, keys []AlertKey) (map[AlertKey]AlertContext, error) {
	out := make(map[AlertKey]AlertContext, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	pairs := make([][2]int64, len(keys))
	for i, k := range keys {
		pairs[i] = [2]int64{k.BookID, int64(k.Seq)}
		out[k] = AlertContext{}
	}
	list, err := oraJSON(pairs)
	if err != nil {
		return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
	}
	rows, err := conn.QueryContext(ctx, oraAlertContextsSQL, list)
	if err != nil {
		return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			k   AlertKey
			c   AlertContext
			no  sql.NullString
			seq sql.NullInt32
			id  sql.NullString
		)
		if err := rows.Scan(&k.BookID, &k.Seq, &no, &seq, &id); err != nil {
			return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
		}
		if no.Valid {
			c.OffenderNo = &no.String
		}
		if seq.Valid {
			c.BookingSeq = &seq.Int32
		}
		if id.Valid {
			c.DPSAlertID = &id.String
		}
		out[k] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up alert bookings and mappings: %w", err)
	}
	return out, nil
}

func (*oracle) Delete(ctx context.Context, conn *sql.Conn, ids []int64, resyncs []Resync) (err error) {
	if len(ids) == 0 && len(resyncs) == 0 {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if len(ids) > 0 {
		list, err := oraJSON(ids)
		if err != nil {
			return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
		}
		if _, err := tx.ExecContext(ctx, oraDeleteSQL, list); err != nil {
			return fmt.Errorf("deleting %d published journal rows: %w", len(ids), err)
		}
	}
	if len(resyncs) > 0 {
		list, err := oraJSON(resyncRows(mergeResyncs(resyncs)))
		if err != nil {
			return fmt.Errorf("recording %d prisoner resyncs: %w", len(resyncs), err)
		}
		if _, err := tx.ExecContext(ctx, oraMergeResyncsSQL, list); err != nil {
			return fmt.Errorf("recording %d prisoner resyncs: %w", len(resyncs), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("deleting %d published journal rows: committing: %w", len(ids), err)
	}
	return nil
}

func (*oracle) RequestResyncs(ctx context.Context, conn *sql.Conn, reqs []ResyncRequest) (err error) {
	if len(reqs) == 0 {
		return nil
	}
	if err := checkRequests(reqs); err != nil {
		return err
	}
	list, err := oraJSON(reqs)
	if err != nil {
		return fmt.Errorf("journaling %d resync requests: %w", len(reqs), err)
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("journaling %d resync requests: %w", len(reqs), err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, oraRequestResyncsSQL, list, RequestModule, len(reqs)); err != nil {
		return fmt.Errorf("journaling %d resync requests: %w", len(reqs), err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("journaling %d resync requests: committing: %w", len(reqs), err)
	}
	return nil
}

// mergeResyncs folds resyncs of one prison number into one (a MERGE source
// must not hold a key twice: ORA-30926): the latest Due, the first Reason.
// The result is ordered by prison number.
func mergeResyncs(in []Resync) []Resync {
	by := make(map[string]int, len(in))
	out := make([]Resync, 0, len(in))
	for _, r := range in {
		i, ok := by[r.OffenderNo]
		if !ok {
			by[r.OffenderNo] = len(out)
			out = append(out, r)
			continue
		}
		if r.Due.After(out[i].Due) {
			out[i].Due = r.Due
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].OffenderNo < out[j].OffenderNo })
	return out
}

// oraResync is a Resync as oraResyncs reads it.
type oraResync struct {
	OffenderNo string `json:"offender_no"`
	Due        string `json:"due_at"`
	Reason     string `json:"reason"`
}

func resyncRows(rs []Resync) []oraResync {
	out := make([]oraResync, len(rs))
	for i, r := range rs {
		out[i] = oraResync{OffenderNo: r.OffenderNo, Due: r.Due.Format(oraTimeFormat), Reason: r.Reason}
	}
	return out
}

func (*oracle) PendingResyncs(ctx context.Context, conn *sql.Conn) ([]Resync, error) {
	return collect(ctx, conn, "pending prisoner resyncs", scanResync, oraPendingResyncsSQL)
}

func (*oracle) DoneResyncs(ctx context.Context, conn *sql.Conn, done []Resync) error {
	if len(done) == 0 {
		return nil
	}
	list, err := oraJSON(resyncRows(done))
	if err != nil {
		return fmt.Errorf("removing %d done prisoner resyncs: %w", len(done), err)
	}
	if _, err := conn.ExecContext(ctx, oraDoneResyncsSQL, list); err != nil {
		return fmt.Errorf("removing %d done prisoner resyncs: %w", len(done), err)
	}
	return nil
}

func (*oracle) PrisonNumbers(ctx context.Context, conn *sql.Conn, offenderIDs []int64) (map[int64]string, error) {
	out := make(map[int64]string, len(offenderIDs))
	if len(offenderIDs) == 0 {
		return out, nil
	}
	list, err := oraJSON(offenderIDs)
	if err != nil {
		return nil, fmt.Errorf("looking up prison numbers: %w", err)
	}
	rows, err := conn.QueryContext(ctx, oraPrisonNumbersSQL, list)
	if err != nil {
		return nil, fmt.Errorf("looking up prison numbers: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id int64
			no string
		)
		if err := rows.Scan(&id, &no); err != nil {
			return nil, fmt.Errorf("looking up prison numbers: %w", err)
		}
		out[id] = no
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("looking up prison numbers: %w", err)
	}
	return out, nil
}

// BeginSnapshot reads the current SCN, then starts a read-only transaction
// (godror issues SET TRANSACTION READ ONLY: every query in it sees the
// database as of its start, at an SCN S at or above the one read), and
// computes its position inside it (oraSnapshotPositionSQL). Rows the
// snapshot does not see committed above S, or belong to a journal writer
// active at S, whose commit SCN is above its START_SCN: both lie above the
// position. Rows committed between the SCN read and S are seen and also
// positioned after it: a consumer applies them twice, never misses them.
// Reading the SCN needs EXECUTE on DBMS_FLASHBACK.
func (*oracle) BeginSnapshot(ctx context.Context, conn *sql.Conn) (*sql.Tx, JournalKey, error) {
	var scn int64
	if err := conn.QueryRowContext(ctx, oraCurrentSCNSQL).Scan(&scn); err != nil {
		return nil, JournalKey{}, fmt.Errorf("reading the current SCN for a snapshot: %w", err)
	}
	tx, err := conn.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, JournalKey{}, fmt.Errorf("starting a read-only snapshot: %w", err)
	}
	var p JournalKey
	if err := tx.QueryRowContext(ctx, oraSnapshotPositionSQL, scn).Scan(&p.Commit, &p.ID, &p.CommitTime); err != nil {
		_ = tx.Rollback()
		return nil, JournalKey{}, fmt.Errorf("reading the snapshot position: %w", err)
	}
	return tx, p, nil
}

func (*oracle) SnapshotJournal(ctx context.Context, tx *sql.Tx) ([]int64, error) {
	return collect(ctx, tx, "the journal ids of a snapshot", scanID, oraSnapshotJournalSQL)
}

func (*oracle) CurrentAlerts(ctx context.Context, tx *sql.Tx, nos []string, fn func(*PrisonerRow) error) error {
	var (
		rows *sql.Rows
		err  error
	)
	switch {
	case nos == nil:
		rows, err = tx.QueryContext(ctx, oraCurrentAlertsSQL)
	case len(nos) == 0:
		return nil
	default:
		list, jerr := oraJSON(nos)
		if jerr != nil {
			return fmt.Errorf("reading current alerts: %w", jerr)
		}
		rows, err = tx.QueryContext(ctx, oraCurrentAlertsOfSQL, list)
	}
	if err != nil {
		return fmt.Errorf("reading current alerts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		r     PrisonerRow
		alert sql.NullString // CLOB
		id    sql.NullString
	)
	for rows.Next() {
		if err := rows.Scan(&r.OffenderNo, &r.BookID, &alert, &id); err != nil {
			return fmt.Errorf("reading current alerts: %w", err)
		}
		r.Alert, r.DPSAlertID = nil, nil
		if alert.Valid {
			r.Alert = []byte(alert.String)
		}
		if id.Valid {
			r.DPSAlertID = &id.String
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading current alerts: %w", err)
	}
	return nil
}

func (*oracle) InitialLoad(ctx context.Context, conn *sql.Conn) (InitialLoadState, bool, error) {
	var s InitialLoadState
	err := conn.QueryRowContext(ctx, oraInitialLoadSQL, oraInitialLoadName).Scan(&s.Position.Commit, &s.Position.ID,
		&s.Alerts, &s.Prisoners, &s.CompletedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return InitialLoadState{}, false, nil
	case err != nil:
		return InitialLoadState{}, false, fmt.Errorf("reading the initial load record: %w", err)
	}
	return s, true, nil
}

func (*oracle) RecordInitialLoad(ctx context.Context, conn *sql.Conn, done InitialLoadState) error {
	_, err := conn.ExecContext(ctx, oraRecordInitialLoadSQL, oraInitialLoadName, done.Position.Commit, done.Position.ID,
		done.Alerts, done.Prisoners, done.CompletedAt)
	if err != nil {
		return fmt.Errorf("recording the initial load: %w", err)
	}
	return nil
}

func (*oracle) Backlog(ctx context.Context, conn *sql.Conn) (int64, time.Time, error) {
	var (
		n      int64
		oldest sql.NullTime
	)
	if err := conn.QueryRowContext(ctx, oraBacklogSQL).Scan(&n, &oldest); err != nil {
		return 0, time.Time{}, fmt.Errorf("measuring the journal backlog: %w", err)
	}
	return n, oldest.Time, nil
}

// oraPermanentCodes are the ORA- codes that need a human.
var oraPermanentCodes = map[int]string{
	904:   "invalid identifier (schema not as migrated)",
	942:   "table or view does not exist (or not granted)",
	1017:  "invalid username/password",
	1031:  "insufficient privileges",
	1045:  "user lacks CREATE SESSION",
	4043:  "object does not exist",
	6550:  "PL/SQL compilation error (e.g. DBMS_LOCK or DBMS_FLASHBACK not granted)",
	12154: "connect identifier not resolved (nomis.dsn)",
	28000: "account locked",
	28001: "password expired",
}

// Permanent reports bad credentials, missing objects or privileges, an
// unresolvable connect identifier, the Oracle client library missing, and
// migrations run in the wrong schema.
func (*oracle) Permanent(err error) bool {
	if errors.Is(err, db.ErrOracleClient) || errors.Is(err, errOracleSchema) || db.IsOracleClientError(err) {
		return true
	}
	code, ok := db.OracleCode(err)
	if !ok {
		return false
	}
	_, permanent := oraPermanentCodes[code]
	return permanent
}

// oraJSON is the collection bind of a list: v as JSON in a temporary CLOB,
// unnested in SQL by JSON_TABLE. A CLOB, because a VARCHAR2 bind stops at
// 4000 bytes in SQL (32767 with MAX_STRING_SIZE=EXTENDED).
func oraJSON(v any) (godror.Lob, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return godror.Lob{}, fmt.Errorf("encoding a bind list: %w", err)
	}
	return godror.Lob{IsClob: true, Reader: bytes.NewReader(b)}, nil
}
