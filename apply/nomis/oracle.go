package nomis

import (
	"bytes"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/godror/godror"
	"github.com/google/uuid"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/deploy"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/transform/rules"
)

// oracle is the dialect of NOMIS on Oracle (nomis.dialect=oracle), through
// database/sql and godror, with the sync-owned objects of
// deploy/oracle/migrations in NOMIS's schema OMS_OWNER. Every statement
// apply nomis runs on Oracle is one of the ora…SQL constants below.
//
// NOT RUN AGAINST A LIVE ORACLE: no Oracle server runs in this project's
// CI (see deploy/oracle/README.md). oracle_test.go runs every method
// against a recording database/sql driver and checks each statement's
// binds, select list and order (marking first, savepoints, the sequence
// retry, the fence); whether Oracle accepts the SQL is unproven.
//
// What differs from the stand-in:
//
//   - Marking: each transaction starts with oraMarkSQL, before any write:
//     DBMS_APPLICATION_INFO.SET_MODULE('DPS_SYNCHRONISATION', <action>)
//     (the journal triggers' fallback, SYS_CONTEXT('USERENV','MODULE')) and
//     NOMIS's own audit context through OMS_OWNER.NOMIS_CONTEXT
//     (AUDIT_MODULE_NAME, AUDIT_USER_ID; what NOMIS's audit triggers and
//     the journal triggers read first). A database without that package
//     (or without EXECUTE on it) raises ORA-06550, which the block ignores:
//     the module alone then marks the writes and the user is the session's.
//     The context is the session's, not the transaction's: a savepoint
//     rollback does not undo setUser, and every transaction sets it again.
//   - ALERT_SEQ: no ON CONFLICT. The current booking is locked (SELECT …
//     FOR UPDATE), then one PL/SQL block computes 1 + the highest sequence
//     of the booking in OFFENDER_ALERTS or the mapping and inserts. A NOMIS
//     user who took that sequence without locking the booking makes it
//     fail with ORA-00001; Oracle rolls back the failed call alone
//     (statement-level rollback) and the store tries the next sequence.
//   - Savepoints: SAVEPOINT / ROLLBACK TO SAVEPOINT ALERTSYNC_COMMAND; Oracle
//     has no RELEASE SAVEPOINT (a savepoint ends with the transaction, the
//     next SAVEPOINT of the name moves it).
//   - Mapping, holds and the offsets claim: MERGE. Lists (claimed
//     partitions, published batches, the sweep's alerts) travel as one
//     JSON array in a temporary CLOB unnested with JSON_TABLE, as in the
//     capture's Oracle dialect: no IN lists.
//   - Conflict commit time: OFFENDER_ALERTS is NOMIS's table, without
//     ROWDEPENDENCIES, so ORA_ROWSCN is the SCN of the last change to any
//     row of its block, and SCN_TO_TIMESTAMP fails (ORA-08181) once the SCN
//     is older than the database keeps the mapping: it would make NOMIS's
//     row look changed when a neighbour was, and decide old rows by error.
//     The dialect takes instead the latest of the row's audit times,
//     AUDIT_TIMESTAMP (stamped by NOMIS's audit trigger on every insert
//     and update), MODIFY_DATETIME and CREATE_DATETIME, read as wall clock
//     in apply.timezone. These are statement times, a little before the
//     commit: a DPS change committed between a NOMIS user's statement and
//     that user's commit counts as later and wins. The stand-in, which
//     has true commit times, decides such a race the other way.
//   - Refusals: ORA codes map to the stand-in's reasons (refused_<SQLSTATE>
//     of the PostgreSQL error with the same meaning, oraRefusals);
//     deadlocks, serialization failures and lost connections are transient
//     (oraTransient).
type oracle struct {
	db     *sql.DB
	tz     string // apply.timezone: the zone of NOMIS's wall-clock columns
	action string // the session's action next to module DPS_SYNCHRONISATION
}

// newOracle returns the Oracle dialect over h.
func newOracle(h *sql.DB, tz, action string) *oracle {
	return &oracle{db: h, tz: tz, action: fit(action, 64)}
}

// openOracle opens (without connecting) a godror handle on cfg of at most
// maxConns connections; name is the sessions' action.
func openOracle(cfg config.NOMIS, tz, name string, maxConns int) (*oracle, error) {
	h, err := db.OracleDB(cfg.DSN, cfg.Password)
	if err != nil {
		return nil, fmt.Errorf("nomis.dsn: %w", err)
	}
	h.SetMaxOpenConns(maxConns + 1) // and one for the relay
	h.SetMaxIdleConns(maxConns + 1)
	return newOracle(h, tz, name), nil
}

func (o *oracle) close() { _ = o.db.Close() }

// Formats of times and dates travelling as text: Go layouts and the Oracle
// models that read or write them.
const (
	oraTimeLayout = "2006-01-02T15:04:05.000000-07:00"
	oraUTCLayout  = "2006-01-02T15:04:05.000000"
	oraDateLayout = time.DateOnly
)

// oraCommandSavepoint is the savepoint of one command.
const oraCommandSavepoint = "ALERTSYNC_COMMAND"

// The statements. Binds are positional, :1, :2, … each once and in order
// (OCI binds SQL placeholders by position of occurrence).
const (
	// oraMarkSQL marks the session as the sync, first in every
	// transaction: :1 module, :2 action (DBMS_APPLICATION_INFO), :3 module
	// and :4 user in NOMIS's audit context when the context package is
	// there (ORA-06550 otherwise: ignored).
	oraMarkSQL = `BEGIN
    DBMS_APPLICATION_INFO.SET_MODULE(module_name => :1, action_name => :2);
    BEGIN
        EXECUTE IMMEDIATE 'BEGIN OMS_OWNER.NOMIS_CONTEXT.SET_CONTEXT(''AUDIT_MODULE_NAME'', :m); OMS_OWNER.NOMIS_CONTEXT.SET_CONTEXT(''AUDIT_USER_ID'', :u); END;'
            USING :3, :4;
    EXCEPTION
        WHEN OTHERS THEN
            IF SQLCODE != -6550 THEN
                RAISE;
            END IF;
    END;
END;`

	// oraSetUserSQL sets the NOMIS user of the writes that follow (:1),
	// when NOMIS's audit context package is there.
	oraSetUserSQL = `BEGIN
    EXECUTE IMMEDIATE 'BEGIN OMS_OWNER.NOMIS_CONTEXT.SET_CONTEXT(''AUDIT_USER_ID'', :u); END;' USING :1;
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -6550 THEN
            RAISE;
        END IF;
END;`

	oraSavepointSQL  = `SAVEPOINT ` + oraCommandSavepoint
	oraRollbackToSQL = `ROLLBACK TO SAVEPOINT ` + oraCommandSavepoint

	// oraBumpHoldSQL counts one more command held behind hold :1 and
	// returns the first command (:2 out); no row: no hold.
	oraBumpHoldSQL = `UPDATE OMS_OWNER.ALERTSYNC_DLQ_HOLDS h
   SET h.HELD_COMMANDS = h.HELD_COMMANDS + 1, h.UPDATED_AT = SYSTIMESTAMP
 WHERE h.HOLD_KEY = :1
RETURNING h.FIRST_COMMAND_ID INTO :2`

	// oraStartHoldSQL starts a hold unless one exists: :1 key, :2 prison
	// number, :3 first command, :4 reason.
	oraStartHoldSQL = `MERGE INTO OMS_OWNER.ALERTSYNC_DLQ_HOLDS h
USING (SELECT :1 AS HOLD_KEY, :2 AS PRISON_NUMBER, :3 AS FIRST_COMMAND_ID, :4 AS REASON FROM DUAL) s
   ON (h.HOLD_KEY = s.HOLD_KEY)
 WHEN NOT MATCHED THEN INSERT (HOLD_KEY, PRISON_NUMBER, FIRST_COMMAND_ID, REASON)
      VALUES (s.HOLD_KEY, s.PRISON_NUMBER, s.FIRST_COMMAND_ID, s.REASON)`

	// oraMappingSQL reads and locks the mapping row of DPS alert :1.
	oraMappingSQL = `SELECT m.OFFENDER_BOOK_ID, m.ALERT_SEQ, m.DPS_COMMIT_POS, m.DPS_CHANGE_POS,
       CASE WHEN m.DELETED_AT IS NULL THEN 0 ELSE 1 END AS IS_DELETED
  FROM OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
 WHERE m.DPS_ALERT_ID = :1
   FOR UPDATE`

	// oraKeyMappedSQL counts the mapping rows holding NOMIS key (:1, :2).
	oraKeyMappedSQL = `SELECT COUNT(*)
  FROM OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
 WHERE m.OFFENDER_BOOK_ID = :1
   AND m.ALERT_SEQ = :2`

	// oraReleaseKeySQL removes the mapping rows of DPS alerts other than :3
	// holding NOMIS key (:1, :2).
	oraReleaseKeySQL = `DELETE FROM OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
 WHERE m.OFFENDER_BOOK_ID = :1
   AND m.ALERT_SEQ = :2
   AND m.DPS_ALERT_ID <> :3`

	// oraReadRowSQL reads and locks the OFFENDER_ALERTS row (:2, :3): dates
	// as YYYY-MM-DD, and the row's last change time (the latest audit time,
	// wall clock in zone :1) in UTC.
	oraReadRowSQL = `SELECT a.ALERT_CODE, a.ALERT_STATUS,
       TO_CHAR(a.ALERT_DATE, 'YYYY-MM-DD') AS ALERT_DATE,
       TO_CHAR(a.EXPIRY_DATE, 'YYYY-MM-DD') AS EXPIRY_DATE,
       a.COMMENT_TEXT, a.AUTHORIZE_PERSON_TEXT,
       TO_CHAR(SYS_EXTRACT_UTC(FROM_TZ(CAST(GREATEST(a.CREATE_DATETIME,
                                                    NVL(a.MODIFY_DATETIME, a.CREATE_DATETIME),
                                                    NVL(a.AUDIT_TIMESTAMP, a.CREATE_DATETIME)) AS TIMESTAMP), :1)),
               'YYYY-MM-DD"T"HH24:MI:SS.FF6') AS CHANGED_AT
  FROM OMS_OWNER.OFFENDER_ALERTS a
 WHERE a.OFFENDER_BOOK_ID = :2
   AND a.ALERT_SEQ = :3
   FOR UPDATE`

	// oraAlertParentSQL reads the parent (type) of alert code :1.
	oraAlertParentSQL = `SELECT r.PARENT_CODE
  FROM OMS_OWNER.REFERENCE_CODES r
 WHERE r.DOMAIN = 'ALERT_CODE'
   AND r.CODE = :1`

	// oraCurrentBookingSQL reads and locks the current booking (BOOKING_SEQ
	// 1, the latest begun) of prison number :1. FOR UPDATE cannot go with
	// ORDER BY … FETCH FIRST (ORA-02014): the booking is chosen in a
	// subquery and locked by key. NOMIS writers that lock the booking
	// before allocating ALERT_SEQ wait for this transaction; Oracle's
	// foreign-key check of a child insert takes no row lock, so a NOMIS
	// user inserting without locking it cannot deadlock with it.
	oraCurrentBookingSQL = `SELECT b.OFFENDER_BOOK_ID, b.ROOT_OFFENDER_ID
  FROM OMS_OWNER.OFFENDER_BOOKINGS b
 WHERE b.OFFENDER_BOOK_ID = (
       SELECT MAX(c.OFFENDER_BOOK_ID) KEEP (DENSE_RANK LAST ORDER BY c.BOOKING_BEGIN_DATE, c.OFFENDER_BOOK_ID)
         FROM OMS_OWNER.OFFENDERS o
         JOIN OMS_OWNER.OFFENDER_BOOKINGS c
           ON c.OFFENDER_ID = o.OFFENDER_ID
        WHERE o.OFFENDER_ID_DISPLAY = :1
          AND c.BOOKING_SEQ = 1)
   FOR UPDATE`

	// oraInsertAlertSQL inserts an alert on booking :1 under ALERT_SEQ = 1
	// + the highest of the booking in OFFENDER_ALERTS or the mapping and
	// returns it (:14 out). :2 created time (oraUTCLayout, UTC; NULL: now)
	// written as wall clock in zone :3 (CREATE_DATETIME, and its day
	// CREATE_DATE); :4 root offender, :5 type, :6 code, :7 status, :8 and
	// :9 dates (YYYY-MM-DD), :10 comment, :11 authorised by, :12 caseload,
	// :13 created by. ORA-00001: the sequence was taken meanwhile.
	oraInsertAlertSQL = `DECLARE
    v_book    NUMBER := :1;
    v_created TIMESTAMP(9);
    v_seq     NUMBER;
BEGIN
    SELECT CAST(FROM_TZ(NVL(TO_TIMESTAMP(:2, 'YYYY-MM-DD"T"HH24:MI:SS.FF6'), SYS_EXTRACT_UTC(SYSTIMESTAMP)), 'UTC')
                AT TIME ZONE :3 AS TIMESTAMP(9))
      INTO v_created
      FROM DUAL;
    SELECT GREATEST(NVL((SELECT MAX(a.ALERT_SEQ) FROM OMS_OWNER.OFFENDER_ALERTS a WHERE a.OFFENDER_BOOK_ID = v_book), 0),
                    NVL((SELECT MAX(m.ALERT_SEQ) FROM OMS_OWNER.ALERTSYNC_ALERT_MAPPING m WHERE m.OFFENDER_BOOK_ID = v_book), 0)) + 1
      INTO v_seq
      FROM DUAL;
    INSERT INTO OMS_OWNER.OFFENDER_ALERTS
        (OFFENDER_BOOK_ID, ROOT_OFFENDER_ID, ALERT_SEQ, ALERT_TYPE, ALERT_CODE, ALERT_STATUS, ALERT_DATE, EXPIRY_DATE,
         COMMENT_TEXT, AUTHORIZE_PERSON_TEXT, CASELOAD_ID, CASELOAD_TYPE, VERIFIED_FLAG,
         CREATE_DATE, CREATE_USER_ID, CREATE_DATETIME)
    VALUES
        (v_book, :4, v_seq, :5, :6, :7, TO_DATE(:8, 'YYYY-MM-DD'), TO_DATE(:9, 'YYYY-MM-DD'),
         :10, :11, :12, 'INST', 'N',
         TRUNC(v_created), :13, v_created);
    :14 := v_seq;
END;`

	// oraUpdateAlertSQL writes a state over row (:10, :11): :1 type, :2
	// code, :3 status, :4 and :5 dates, :6 comment, :7 authorised by, :8
	// the modifying user, MODIFY_DATETIME now as wall clock in zone :9.
	oraUpdateAlertSQL = `UPDATE OMS_OWNER.OFFENDER_ALERTS a
   SET a.ALERT_TYPE = :1, a.ALERT_CODE = :2, a.ALERT_STATUS = :3,
       a.ALERT_DATE = TO_DATE(:4, 'YYYY-MM-DD'), a.EXPIRY_DATE = TO_DATE(:5, 'YYYY-MM-DD'),
       a.COMMENT_TEXT = :6, a.AUTHORIZE_PERSON_TEXT = :7,
       a.MODIFY_USER_ID = :8, a.MODIFY_DATETIME = CAST(SYSTIMESTAMP AT TIME ZONE :9 AS TIMESTAMP(9))
 WHERE a.OFFENDER_BOOK_ID = :10
   AND a.ALERT_SEQ = :11`

	// oraDeleteAlertSQL deletes row (:1, :2), a hard delete as NOMIS does.
	oraDeleteAlertSQL = `DELETE FROM OMS_OWNER.OFFENDER_ALERTS a
 WHERE a.OFFENDER_BOOK_ID = :1
   AND a.ALERT_SEQ = :2`

	// oraConflictSQL records a conflict decision; times in oraTimeLayout.
	oraConflictSQL = `INSERT INTO OMS_OWNER.ALERTSYNC_CONFLICTS
    (COMMAND_ID, DPS_ALERT_ID, OFFENDER_BOOK_ID, ALERT_SEQ, WINNER, SOURCE_COMMIT_TIME, TARGET_COMMIT_TIME)
VALUES
    (:1, :2, :3, :4, :5,
     TO_TIMESTAMP_TZ(:6, 'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM'),
     TO_TIMESTAMP_TZ(:7, 'YYYY-MM-DD"T"HH24:MI:SS.FF6TZH:TZM'))`

	// oraSetMappingSQL inserts or updates the mapping row of DPS alert :1:
	// key (:2, :3), prison number :4, type :5 (kept by an existing row),
	// position (:6, :7), deleted :8 (1 or 0; a deleted row keeps the time
	// it was first deleted).
	oraSetMappingSQL = `MERGE INTO OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
USING (SELECT :1 AS DPS_ALERT_ID, :2 AS OFFENDER_BOOK_ID, :3 AS ALERT_SEQ, :4 AS OFFENDER_NO, :5 AS MAPPING_TYPE,
              :6 AS DPS_COMMIT_POS, :7 AS DPS_CHANGE_POS, :8 AS IS_DELETED
         FROM DUAL) s
   ON (m.DPS_ALERT_ID = s.DPS_ALERT_ID)
 WHEN MATCHED THEN UPDATE SET
      m.OFFENDER_BOOK_ID = s.OFFENDER_BOOK_ID, m.ALERT_SEQ = s.ALERT_SEQ, m.OFFENDER_NO = s.OFFENDER_NO,
      m.DPS_COMMIT_POS = s.DPS_COMMIT_POS, m.DPS_CHANGE_POS = s.DPS_CHANGE_POS,
      m.DELETED_AT = CASE WHEN s.IS_DELETED = 1 THEN NVL(m.DELETED_AT, SYSTIMESTAMP) END,
      m.UPDATED_AT = SYSTIMESTAMP
 WHEN NOT MATCHED THEN INSERT
      (DPS_ALERT_ID, OFFENDER_BOOK_ID, ALERT_SEQ, OFFENDER_NO, MAPPING_TYPE, DPS_COMMIT_POS, DPS_CHANGE_POS, DELETED_AT)
      VALUES (s.DPS_ALERT_ID, s.OFFENDER_BOOK_ID, s.ALERT_SEQ, s.OFFENDER_NO, s.MAPPING_TYPE, s.DPS_COMMIT_POS, s.DPS_CHANGE_POS,
              CASE WHEN s.IS_DELETED = 1 THEN SYSTIMESTAMP END)`

	// oraWriteOutboxSQL writes one outbox batch: :1 commands, :2 payload
	// (BLOB, apply.EncodeOutbox).
	oraWriteOutboxSQL = `INSERT INTO OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES (COMMANDS, PAYLOAD)
VALUES (:1, :2)`

	// oraPendingSQL reads the oldest :1 outbox batches, their creation
	// time in UTC.
	oraPendingSQL = `SELECT b.ID, TO_CHAR(SYS_EXTRACT_UTC(b.CREATED_AT), 'YYYY-MM-DD"T"HH24:MI:SS.FF6') AS CREATED_AT, b.PAYLOAD
  FROM OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES b
 ORDER BY b.ID
 FETCH FIRST :1 ROWS ONLY`

	// oraPublishedSQL deletes the outbox batches whose ids are in the JSON
	// array :1.
	oraPublishedSQL = `DELETE FROM OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES b
 WHERE b.ID IN (SELECT t.ID FROM JSON_TABLE(:1, '$[*]' COLUMNS (ID NUMBER(19) PATH '$')) t)`

	// oraClaimSQL claims partitions (JSON array :4) of topic :2 for group
	// :1 and owner :3: bumps the fence epoch of a stored partition, creates
	// a missing one at epoch 1 (so epoch 1 is a claim that created its row:
	// every later claim increments it).
	oraClaimSQL = `MERGE INTO OMS_OWNER.ALERTSYNC_CONSUMER_OFFSETS o
USING (SELECT :1 AS CONSUMER_GROUP, :2 AS TOPIC, :3 AS FENCE_OWNER, p.KAFKA_PARTITION
         FROM JSON_TABLE(:4, '$[*]' COLUMNS (KAFKA_PARTITION NUMBER(10) PATH '$')) p) s
   ON (o.CONSUMER_GROUP = s.CONSUMER_GROUP AND o.TOPIC = s.TOPIC AND o.KAFKA_PARTITION = s.KAFKA_PARTITION)
 WHEN MATCHED THEN UPDATE SET
      o.FENCE_EPOCH = o.FENCE_EPOCH + 1, o.FENCE_OWNER = s.FENCE_OWNER, o.UPDATED_AT = SYSTIMESTAMP
 WHEN NOT MATCHED THEN INSERT (CONSUMER_GROUP, TOPIC, KAFKA_PARTITION, NEXT_OFFSET, FENCE_EPOCH, FENCE_OWNER)
      VALUES (s.CONSUMER_GROUP, s.TOPIC, s.KAFKA_PARTITION, 0, 1, s.FENCE_OWNER)`

	// oraClaimedSQL reads the fences of the claimed partitions (group :1,
	// topic :2, JSON array :3), in the claim's transaction.
	oraClaimedSQL = `SELECT o.KAFKA_PARTITION, o.NEXT_OFFSET, o.FENCE_EPOCH
  FROM OMS_OWNER.ALERTSYNC_CONSUMER_OFFSETS o
 WHERE o.CONSUMER_GROUP = :1
   AND o.TOPIC = :2
   AND o.KAFKA_PARTITION IN (SELECT p.KAFKA_PARTITION
                               FROM JSON_TABLE(:3, '$[*]' COLUMNS (KAFKA_PARTITION NUMBER(10) PATH '$')) p)`

	// oraCommitOffsetSQL stores next offset :1 of partition (:2, :3, :4)
	// if its fence epoch is still :5: no row updated is a lost fence.
	oraCommitOffsetSQL = `UPDATE OMS_OWNER.ALERTSYNC_CONSUMER_OFFSETS o
   SET o.NEXT_OFFSET = :1, o.UPDATED_AT = SYSTIMESTAMP
 WHERE o.CONSUMER_GROUP = :2
   AND o.TOPIC = :3
   AND o.KAFKA_PARTITION = :4
   AND o.FENCE_EPOCH = :5`

	// oraSweepSQL sets INACTIVE the NOMIS rows of a batch of lapsed DPS
	// alerts, the JSON array :1 of {"id", "active_to", "book", "seq"} (the
	// DPS-side mapping's key or null), by the stand-in's rule (sweepSQL):
	// the row the NOMIS-side mapping (not deleted) names, else the DPS-side
	// mapping's unless the NOMIS-side mapping gives that key to another
	// alert; only while ACTIVE and its EXPIRY_DATE is not after the sweep's
	// date :4; EXPIRY_DATE takes active_to where NOMIS has none;
	// MODIFY_USER_ID :2, MODIFY_DATETIME now as wall clock in zone :3. A
	// MERGE source must not hold a key twice (ORA-30926): grouped by key.
	oraSweepSQL = `MERGE INTO OMS_OWNER.OFFENDER_ALERTS a
USING (SELECT k.BOOK, k.SEQ, MIN(k.ACTIVE_TO) AS ACTIVE_TO
         FROM (SELECT d.DPS_ALERT_ID,
                      TO_DATE(d.ACTIVE_TO, 'YYYY-MM-DD') AS ACTIVE_TO,
                      CASE WHEN m.DPS_ALERT_ID IS NOT NULL AND m.DELETED_AT IS NULL THEN m.OFFENDER_BOOK_ID ELSE d.BOOK END AS BOOK,
                      CASE WHEN m.DPS_ALERT_ID IS NOT NULL AND m.DELETED_AT IS NULL THEN m.ALERT_SEQ ELSE d.SEQ END AS SEQ
                 FROM JSON_TABLE(:1, '$[*]' COLUMNS (
                          DPS_ALERT_ID VARCHAR2(36) PATH '$.id',
                          ACTIVE_TO    VARCHAR2(10) PATH '$.active_to',
                          BOOK         NUMBER(10)   PATH '$.book',
                          SEQ          NUMBER(6)    PATH '$.seq')) d
                 LEFT JOIN OMS_OWNER.ALERTSYNC_ALERT_MAPPING m
                   ON m.DPS_ALERT_ID = d.DPS_ALERT_ID) k
        WHERE k.BOOK IS NOT NULL
          AND k.SEQ IS NOT NULL
          AND NOT EXISTS (SELECT 1
                            FROM OMS_OWNER.ALERTSYNC_ALERT_MAPPING x
                           WHERE x.OFFENDER_BOOK_ID = k.BOOK
                             AND x.ALERT_SEQ = k.SEQ
                             AND x.DPS_ALERT_ID <> k.DPS_ALERT_ID)
        GROUP BY k.BOOK, k.SEQ) s
   ON (a.OFFENDER_BOOK_ID = s.BOOK AND a.ALERT_SEQ = s.SEQ)
 WHEN MATCHED THEN UPDATE SET
      a.ALERT_STATUS = 'INACTIVE', a.EXPIRY_DATE = NVL(a.EXPIRY_DATE, s.ACTIVE_TO),
      a.MODIFY_USER_ID = :2, a.MODIFY_DATETIME = CAST(SYSTIMESTAMP AT TIME ZONE :3 AS TIMESTAMP(9))
      WHERE a.ALERT_STATUS = 'ACTIVE'
        AND (a.EXPIRY_DATE IS NULL OR a.EXPIRY_DATE < TO_DATE(:4, 'YYYY-MM-DD') + 1)`

	// oraPrepareSQL returns the session's current schema and,
	// comma-separated, which of the tables apply nomis uses it can see.
	oraPrepareSQL = `SELECT SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA') AS CURRENT_SCHEMA,
       (SELECT LISTAGG(t.TABLE_NAME, ',') WITHIN GROUP (ORDER BY t.TABLE_NAME)
          FROM ALL_TABLES t
         WHERE t.OWNER = 'OMS_OWNER'
           AND t.TABLE_NAME IN ('OFFENDERS', 'OFFENDER_BOOKINGS', 'OFFENDER_ALERTS', 'REFERENCE_CODES',
                                'ALERTSYNC_ALERT_MAPPING', 'ALERTSYNC_CONSUMER_OFFSETS', 'ALERTSYNC_OUTCOME_BATCHES',
                                'ALERTSYNC_DLQ_HOLDS', 'ALERTSYNC_CONFLICTS')) AS VISIBLE
  FROM DUAL`
)

// oraTables are the tables oraPrepareSQL looks for.
var oraTables = []string{"OFFENDERS", "OFFENDER_BOOKINGS", "OFFENDER_ALERTS", "REFERENCE_CODES",
	"ALERTSYNC_ALERT_MAPPING", "ALERTSYNC_CONSUMER_OFFSETS", "ALERTSYNC_OUTCOME_BATCHES", "ALERTSYNC_DLQ_HOLDS", "ALERTSYNC_CONFLICTS"}

// prepare applies the Oracle migrations (deploy.OracleMigrations, the
// capture's set) when connected as OMS_OWNER, then checks that every table
// apply nomis uses is visible: the least-privilege apply user
// (deploy/oracle/install/apply_user.sql) cannot migrate, so a missing table
// is fatal and says to run `alertsync migrate nomis --nomis.dialect=oracle`
// as OMS_OWNER.
func (o *oracle) prepare(ctx context.Context) error {
	schema, visible, err := o.visible(ctx)
	if err != nil {
		return err
	}
	if strings.EqualFold(schema, "OMS_OWNER") {
		set, err := migrate.Load("nomis", deploy.OracleMigrations())
		if err != nil {
			return fmt.Errorf("loading the Oracle nomis migrations: %w", err)
		}
		if _, err := migrate.Up(ctx, o.db, set, migrate.Latest, migrate.WithDialect(migrate.Oracle{})); err != nil {
			return &apply.FatalError{Err: fmt.Errorf("applying the Oracle nomis migrations: %w", err)}
		}
		if _, visible, err = o.visible(ctx); err != nil {
			return err
		}
	}
	var missing []string
	for _, t := range oraTables {
		if !visible[t] {
			missing = append(missing, "OMS_OWNER."+t)
		}
	}
	if len(missing) > 0 {
		return &apply.FatalError{Err: fmt.Errorf("apply nomis cannot see %s (connected with current schema %s): run "+
			"`alertsync migrate nomis --nomis.dialect=oracle` connected as OMS_OWNER, then deploy/oracle/install/apply_user.sql",
			strings.Join(missing, ", "), schema)}
	}
	return nil
}

// visible runs oraPrepareSQL.
func (o *oracle) visible(ctx context.Context) (string, map[string]bool, error) {
	var schema, list sql.NullString
	if err := o.db.QueryRowContext(ctx, oraPrepareSQL).Scan(&schema, &list); err != nil {
		return "", nil, fmt.Errorf("checking the NOMIS tables: %w", err)
	}
	visible := map[string]bool{}
	for _, t := range strings.Split(list.String, ",") {
		visible[strings.TrimSpace(t)] = true
	}
	return schema.String, visible, nil
}

// Claim implements apply.Store.Claim: MERGE then read, in one transaction,
// retried when two applies create the same partition's row at once
// (ORA-00001 on the offsets' key).
func (o *oracle) Claim(ctx context.Context, group, topic string, partitions []int32, owner string) (map[int32]apply.Fence, error) {
	for attempt := 1; ; attempt++ {
		fences, err := o.claim(ctx, group, topic, partitions, owner)
		if code, ok := db.OracleCode(err); ok && code == 1 && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("claiming offsets: %w", err)
		}
		return fences, nil
	}
}

func (o *oracle) claim(ctx context.Context, group, topic string, partitions []int32, owner string) (_ map[int32]apply.Fence, err error) {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	list, err := oraJSON(partitions)
	if err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, oraClaimSQL, group, topic, owner, list); err != nil {
		return nil, err
	}
	if list, err = oraJSON(partitions); err != nil {
		return nil, err
	}
	rows, err := tx.QueryContext(ctx, oraClaimedSQL, group, topic, list)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[int32]apply.Fence{}
	for rows.Next() {
		var (
			p        int32
			next, ep int64
		)
		if err := rows.Scan(&p, &next, &ep); err != nil {
			return nil, err
		}
		if ep == 1 {
			next = -1 // created by this claim: nothing stored yet
		}
		out[p] = apply.Fence{Group: group, Topic: topic, Partition: p, Epoch: ep, Next: next}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return out, nil
}

// Pending implements apply.Outbox.
func (o *oracle) Pending(ctx context.Context, limit int) ([]apply.OutboxBatch, error) {
	rows, err := o.db.QueryContext(ctx, oraPendingSQL, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []apply.OutboxBatch
	for rows.Next() {
		var (
			ob      apply.OutboxBatch
			created string
			payload []byte
		)
		if err := rows.Scan(&ob.ID, &created, &payload); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		if ob.CreatedAt, err = time.ParseInLocation(oraUTCLayout, created, time.UTC); err != nil {
			return nil, fmt.Errorf("reading outbox batch %d: its creation time: %w", ob.ID, err)
		}
		if ob.Rows, err = apply.DecodeOutbox(payload); err != nil {
			return nil, fmt.Errorf("reading outbox batch %d: %w", ob.ID, err)
		}
		out = append(out, ob)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// Published implements apply.Outbox: it deletes the batches.
func (o *oracle) Published(ctx context.Context, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	list, err := oraJSON(ids)
	if err != nil {
		return fmt.Errorf("removing published outcome batches: %w", err)
	}
	if _, err := o.db.ExecContext(ctx, oraPublishedSQL, list); err != nil {
		return fmt.Errorf("removing published outcome batches: %w", err)
	}
	return nil
}

// begin starts a transaction (Oracle's default isolation, read
// committed) marked as the sync before any write.
func (o *oracle) begin(ctx context.Context) (writeTx, error) {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("beginning a transaction: %w", err)
	}
	if _, err := tx.ExecContext(ctx, oraMarkSQL, SyncModule, o.action, SyncModule, SyncModule); err != nil {
		_ = tx.Rollback()
		return nil, fmt.Errorf("marking the transaction as the sync: %w", err)
	}
	return &oracleTx{o: o, tx: tx, user: SyncModule}, nil
}

// oracleTx is an Oracle transaction.
type oracleTx struct {
	o    *oracle
	tx   *sql.Tx
	user string // the NOMIS context's AUDIT_USER_ID as last set
}

func (t *oracleTx) rollback(context.Context) { _ = t.tx.Rollback() }

// startCommand runs the hold check and, unless the command is held, moves
// the savepoint (Oracle has no RELEASE SAVEPOINT: a savepoint of the same
// name replaces the previous one), sets the audit user and reads the
// mapping, one statement after the other; the current booking is read
// when the create needs it (bookingOf is not used).
func (t *oracleTx) startCommand(ctx context.Context, holdKey, user, dpsID, _ string) (commandStart, error) {
	var st commandStart
	if holdKey != "" {
		first, held, err := t.bumpHold(ctx, holdKey)
		if err != nil {
			return st, fmt.Errorf("checking holds: %w", err)
		}
		if held {
			return commandStart{held: true, heldBehind: first}, nil
		}
	}
	if _, err := t.tx.ExecContext(ctx, oraSavepointSQL); err != nil {
		return st, fmt.Errorf("opening a savepoint: %w", err)
	}
	if err := t.setUser(ctx, user); err != nil {
		return st, err
	}
	l, err := t.mapping(ctx, dpsID)
	if err != nil {
		return st, fmt.Errorf("reading the mapping of alert %s: %w", dpsID, err)
	}
	st.link = l
	return st, nil
}

func (t *oracleTx) rollbackToSavepoint(ctx context.Context) error {
	_, err := t.tx.ExecContext(ctx, oraRollbackToSQL)
	return err
}

// setUser sets the context's AUDIT_USER_ID when it differs from the last
// one set on the session in this transaction (a context outlives
// savepoint rollbacks: it is the session's).
func (t *oracleTx) setUser(ctx context.Context, user string) error {
	user = fit(user, 32)
	if user == t.user {
		return nil
	}
	if _, err := t.tx.ExecContext(ctx, oraSetUserSQL, user); err != nil {
		return fmt.Errorf("setting the audit user: %w", err)
	}
	t.user = user
	return nil
}

func (t *oracleTx) bumpHold(ctx context.Context, key string) (string, bool, error) {
	var first string
	res, err := t.tx.ExecContext(ctx, oraBumpHoldSQL, key, sql.Out{Dest: &first})
	if err != nil {
		return "", false, err
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return "", false, err
	}
	return first, true, nil
}

// startHold starts a hold unless one exists. Two sessions may both find
// none and insert (a redrive putting the hold back): the second gets
// ORA-00001 for its statement alone, and the hold stands, which is what
// "unless one exists" asks (as ON CONFLICT DO NOTHING on the stand-in).
func (t *oracleTx) startHold(ctx context.Context, h hold) error {
	_, err := t.tx.ExecContext(ctx, oraStartHoldSQL, h.key, h.prisonNumber, h.firstCommand, h.reason)
	if code, ok := db.OracleCode(err); ok && code == 1 {
		return nil
	}
	return err
}

func (t *oracleTx) mapping(ctx context.Context, dpsID string) (*link, error) {
	var (
		l       = link{mapped: true}
		cp, chp sql.NullInt64
		deleted int64
	)
	err := t.tx.QueryRowContext(ctx, oraMappingSQL, oraUUID(dpsID)).Scan(&l.key.book, &l.key.seq, &cp, &chp, &deleted)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	l.deleted = deleted == 1
	if cp.Valid && chp.Valid {
		l.pos = &rules.Position{Commit: cp.Int64, Change: chp.Int64}
	}
	return &l, nil
}

func (t *oracleTx) keyMapped(ctx context.Context, k nomisKey) (bool, error) {
	var n int64
	if err := t.tx.QueryRowContext(ctx, oraKeyMappedSQL, k.book, k.seq).Scan(&n); err != nil {
		return false, err
	}
	return n > 0, nil
}

func (t *oracleTx) releaseKey(ctx context.Context, k nomisKey, dpsID string) error {
	_, err := t.tx.ExecContext(ctx, oraReleaseKeySQL, k.book, k.seq, oraUUID(dpsID))
	return err
}

func (t *oracleTx) readRow(ctx context.Context, k nomisKey) (*row, error) {
	var (
		r                  = row{key: k}
		from               string
		to, changed        sql.NullString
		comment, authority sql.NullString
	)
	err := t.tx.QueryRowContext(ctx, oraReadRowSQL, t.o.tz, k.book, k.seq).
		Scan(&r.code, &r.status, &from, &to, &comment, &authority, &changed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if r.from, err = oraDate(from); err != nil {
		return nil, fmt.Errorf("ALERT_DATE: %w", err)
	}
	if to.Valid {
		d, err := oraDate(to.String)
		if err != nil {
			return nil, fmt.Errorf("EXPIRY_DATE: %w", err)
		}
		r.to = &d
	}
	if comment.Valid {
		r.comment = &comment.String
	}
	if authority.Valid {
		r.authorised = &authority.String
	}
	if changed.Valid {
		ts, err := time.ParseInLocation(oraUTCLayout, changed.String, time.UTC)
		if err != nil {
			return nil, fmt.Errorf("the row's change time: %w", err)
		}
		r.commitTime = &ts
	}
	return &r, nil
}

func (t *oracleTx) alertParent(ctx context.Context, code string) (string, bool, error) {
	var parent sql.NullString
	err := t.tx.QueryRowContext(ctx, oraAlertParentSQL, code).Scan(&parent)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return parent.String, true, nil
}

func (t *oracleTx) currentBooking(ctx context.Context, prisonNumber string) (int64, *int64, bool, error) {
	var (
		book int64
		root sql.NullInt64
	)
	err := t.tx.QueryRowContext(ctx, oraCurrentBookingSQL, prisonNumber).Scan(&book, &root)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil, false, nil
	}
	if err != nil {
		return 0, nil, false, err
	}
	if !root.Valid {
		return book, nil, true, nil
	}
	return book, &root.Int64, true, nil
}

// insertAlert: ORA-00001 is the sequence taken by a NOMIS user meanwhile;
// Oracle has rolled back the failed block alone.
func (t *oracleTx) insertAlert(ctx context.Context, in insertion) (int32, bool, error) {
	st := in.state
	var created *string
	if !st.CreatedAt.IsZero() {
		s := st.CreatedAt.UTC().Format(oraUTCLayout)
		created = &s
	}
	var seq int64
	_, err := t.tx.ExecContext(ctx, oraInsertAlertSQL, in.book, created, t.o.tz, in.root, in.typ, st.Code, st.Status.String(),
		st.ActiveFrom.String(), apply.DateArg(st.ActiveTo), st.Description, st.AuthorisedBy, st.PrisonCode, st.CreatedBy,
		sql.Out{Dest: &seq})
	if code, ok := db.OracleCode(err); ok && code == oraUniqueViolation {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	return int32(seq), false, nil //nolint:gosec // ALERT_SEQ is NUMBER(6)
}

func (t *oracleTx) updateAlert(ctx context.Context, k nomisKey, typ string, st *rules.AlertState, user string) error {
	_, err := t.tx.ExecContext(ctx, oraUpdateAlertSQL, typ, st.Code, st.Status.String(), st.ActiveFrom.String(), apply.DateArg(st.ActiveTo),
		st.Description, st.AuthorisedBy, user, t.o.tz, k.book, k.seq)
	return err
}

func (t *oracleTx) deleteAlert(ctx context.Context, k nomisKey) error {
	_, err := t.tx.ExecContext(ctx, oraDeleteAlertSQL, k.book, k.seq)
	return err
}

func (t *oracleTx) recordConflict(ctx context.Context, c conflict) error {
	var target *string
	if c.targetCommitTime != nil {
		s := c.targetCommitTime.Format(oraTimeLayout)
		target = &s
	}
	_, err := t.tx.ExecContext(ctx, oraConflictSQL, c.commandID, oraUUID(c.dpsAlertID), c.key.book, c.key.seq, c.winner,
		c.sourceCommitTime.Format(oraTimeLayout), target)
	return err
}

func (t *oracleTx) setMapping(ctx context.Context, m mappingWrite) error {
	deleted := 0
	if m.deleted {
		deleted = 1
	}
	_, err := t.tx.ExecContext(ctx, oraSetMappingSQL, oraUUID(m.dpsID), m.key.book, m.key.seq, m.prisonNumber, m.kind,
		m.pos.Commit, m.pos.Change, deleted)
	return err
}

func (t *oracleTx) writeOutbox(ctx context.Context, rows []apply.OutboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	payload := godror.Lob{Reader: bytes.NewReader(apply.EncodeOutbox(rows))}
	if _, err := t.tx.ExecContext(ctx, oraWriteOutboxSQL, len(rows), payload); err != nil {
		return fmt.Errorf("writing %d outcomes to the outbox: %w", len(rows), err)
	}
	return nil
}

func (t *oracleTx) commitFenced(ctx context.Context, f apply.Fence, next int64) error {
	res, err := t.tx.ExecContext(ctx, oraCommitOffsetSQL, next, f.Group, f.Topic, f.Partition, f.Epoch)
	if err != nil {
		return fmt.Errorf("storing the consumed offset: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("storing the consumed offset: %w", err)
	}
	if n != 1 {
		return apply.ErrFenced
	}
	failpoint.Hit("apply.before_commit")
	if err := t.tx.Commit(); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	failpoint.Hit("apply.after_commit")
	return nil
}

// oraDue is one lapsed alert in oraSweepSQL's JSON bind.
type oraDue struct {
	ID       string `json:"id"`
	ActiveTo string `json:"active_to"`
	Book     *int64 `json:"book"`
	Seq      *int32 `json:"seq"`
}

// inactivate runs oraSweepSQL in one transaction marked as the sync
// (module and user DPS_SYNCHRONISATION).
func (o *oracle) inactivate(ctx context.Context, date rules.Date, page []dueAlert) (n int, err error) {
	due := make([]oraDue, len(page))
	for i, a := range page {
		due[i] = oraDue{ID: oraUUID(a.id), ActiveTo: a.activeTo, Book: a.book, Seq: a.seq}
	}
	list, err := oraJSON(due)
	if err != nil {
		return 0, err
	}
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("beginning a sweep transaction: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, oraMarkSQL, SyncModule, o.action, SyncModule, SweepUser); err != nil {
		return 0, fmt.Errorf("marking the sweep transaction as the sync: %w", err)
	}
	res, err := tx.ExecContext(ctx, oraSweepSQL, list, SweepUser, o.tz, date.String())
	if err != nil {
		return 0, fmt.Errorf("setting lapsed alerts INACTIVE: %w", err)
	}
	rows, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("setting lapsed alerts INACTIVE: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("committing a sweep transaction: %w", err)
	}
	return int(rows), nil
}

// oraUniqueViolation is ORA-00001, unique constraint violated.
const oraUniqueViolation = 1

// oraRefusals maps the ORA codes of a database refusing the command's
// data to the SQLSTATE of the PostgreSQL error with the same meaning, so
// that a refusal has the same reason (refused_<SQLSTATE>) on both
// dialects.
var oraRefusals = map[int]string{
	1:     "23505", // unique constraint violated
	1400:  "23502", // cannot insert NULL
	1407:  "23502", // cannot update to NULL
	2290:  "23514", // check constraint violated
	2291:  "23503", // parent key not found
	2292:  "23503", // child record found
	12899: "22001", // value too large for column
	1401:  "22001", // inserted value too large for column
	1438:  "22003", // value larger than the column's precision
	1841:  "22008", // year out of range
	1843:  "22008", // not a valid month
	1847:  "22008", // day of month out of range
	1861:  "22007", // literal does not match format string
}

// oraTransient are the ORA codes worth retrying the transaction for.
var oraTransient = map[int]bool{
	60:    true, // deadlock detected
	8177:  true, // cannot serialize access
	28:    true, // session killed
	1012:  true, // not logged on
	1033:  true, // initialization or shutdown in progress
	1034:  true, // Oracle not available
	1089:  true, // immediate shutdown in progress
	2396:  true, // exceeded maximum idle time
	3113:  true, // end-of-file on communication channel
	3114:  true, // not connected to Oracle
	3135:  true, // connection lost contact
	4068:  true, // existing state of packages discarded
	12170: true, // connect timeout
	12514: true, // listener does not currently know of the service
	12528: true, // listener: all instances blocking new connections
	12537: true, // TNS: connection closed
	12541: true, // TNS: no listener
	12547: true, // TNS: lost contact
	25408: true, // cannot safely replay call
}

// refusal maps a refusing ORA code (oraRefusals) to apply.Refusal.
func (o *oracle) refusal(err error) (*apply.Refusal, bool) {
	if ref, ok := apply.AsRefusal(err); ok {
		return ref, true
	}
	code, ok := db.OracleCode(err)
	if !ok {
		return nil, false
	}
	state, ok := oraRefusals[code]
	if !ok {
		return nil, false
	}
	return &apply.Refusal{Reason: "refused_" + state, Msg: fmt.Sprintf("ORA-%05d %s", code, oraRefusalText(code))}, true
}

// oraRefusalText describes a refusing code without quoting the database's
// message (which can hold the offending value: alert text).
func oraRefusalText(code int) string {
	switch oraRefusals[code] {
	case "23505":
		return "unique constraint violated"
	case "23502":
		return "a required value is missing"
	case "23514":
		return "check constraint violated"
	case "23503":
		return "foreign key violated"
	case "22001", "22003":
		return "value too large for its column"
	default:
		return "invalid date"
	}
}

// transient: oraTransient codes, a bad connection, and what apply.Transient
// knows (network errors, deadlines).
func (o *oracle) transient(err error) bool {
	if code, ok := db.OracleCode(err); ok {
		return oraTransient[code]
	}
	return errors.Is(err, driver.ErrBadConn) || apply.Transient(err)
}

// oraJSON is the collection bind of a list: v as JSON in a temporary CLOB,
// unnested in SQL by JSON_TABLE.
func oraJSON(v any) (godror.Lob, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return godror.Lob{}, fmt.Errorf("encoding a bind list: %w", err)
	}
	return godror.Lob{IsClob: true, Reader: bytes.NewReader(b)}, nil
}

// oraUUID is id in the canonical lower-case form ALERTSYNC_* tables hold
// (VARCHAR2(36)); id as it is when it is no UUID.
func oraUUID(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	return u.String()
}

// oraDate parses a YYYY-MM-DD date.
func oraDate(s string) (rules.Date, error) {
	t, err := time.ParseInLocation(oraDateLayout, s, time.UTC)
	if err != nil {
		return 0, err
	}
	return rules.DateIn(t, time.UTC), nil
}

var _ dialect = (*oracle)(nil)
