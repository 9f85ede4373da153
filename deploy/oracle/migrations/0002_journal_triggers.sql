-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Row triggers on the NOMIS tables that append to ALERTSYNC_JOURNAL (0001),
-- counterpart of deploy/nomis/migrations/0002_journal_triggers.sql. They add
-- no column, index or constraint to NOMIS's tables and change no row: AFTER
-- row triggers that only insert into the journal. They are owned by the
-- schema that runs the migrations (OMS_OWNER, see README.md) and run with its
-- rights, so NOMIS's users need no grant on the journal.
--
-- Row images: JSON_OBJECT over every column of :OLD / :NEW with lower-case
-- keys in column order, NULL ON NULL, RETURNING CLOB (a 4000-byte
-- COMMENT_TEXT would overflow the VARCHAR2(4000) default), as the stand-in's
-- to_json(OLD/NEW) does. DATE and TIMESTAMP values come out as ISO 8601
-- ("2024-02-01T00:00:00"), as in the stand-in. JSON_OBJECT is called through
-- SELECT ... FROM DUAL; RETURNING CLOB needs Oracle 18c or later. The
-- column lists are those of the
-- stand-in (deploy/nomis/schema.sql, a subset of NOMIS's columns; a test
-- keeps them equal); a column NOMIS has beyond them is not journalled.
--
-- Session values, read when the trigger fires, never from :OLD / :NEW (a
-- delete records the deleting session's module), mirroring the stand-in's
-- nomis.* settings:
--   MODULE_NAME     = SYS_CONTEXT('NOMIS','AUDIT_MODULE_NAME',65)
--                     else SYS_CONTEXT('USERENV','MODULE')
--                     (stand-in: nomis.audit_module_name)
--   ADDITIONAL_INFO = SYS_CONTEXT('NOMIS','AUDIT_ADDITIONAL_INFO',256)
--                     else SYS_CONTEXT('USERENV','CLIENT_INFO')
--                     (stand-in: nomis.audit_additional_info)
--   USER_ID         = SYS_CONTEXT('NOMIS','AUDIT_USER_ID',32)
--                     else SYS_CONTEXT('USERENV','SESSION_USER')
--                     (stand-in: nomis.audit_user_id, else session_user)
-- each cut to the journal column's length. The NOMIS application context
-- attributes are what NOMIS's own audit triggers read; the USERENV fallbacks
-- cover sessions that only call DBMS_APPLICATION_INFO.SET_MODULE /
-- SET_CLIENT_INFO (as apply nomis does, with module DPS_SYNCHRONISATION).
-- SYS_CONTEXT of a namespace that does not exist is NULL, not an error.
-- Whether a real NOMIS fills exactly these attributes is unconfirmed: see
-- README.md.
--
-- TXID: DBMS_TRANSACTION.LOCAL_TRANSACTION_ID (EXECUTE granted to PUBLIC by
-- default). Ordering uses ORA_ROWSCN, not TXID.
--
-- Bookings: only inserts, deletes and updates of BOOKING_SEQ, OFFENDER_ID or
-- ROOT_OFFENDER_ID fire the trigger (UPDATE OF); an update that sets them to
-- the values they had is skipped in the body, as the stand-in's WHEN clause
-- does. CREATE OR REPLACE makes each statement re-runnable.

CREATE OR REPLACE TRIGGER ALERTSYNC_ALERTS_JNL
    AFTER INSERT OR UPDATE OR DELETE ON OMS_OWNER.OFFENDER_ALERTS
    FOR EACH ROW
DECLARE
    v_op   CHAR(1);
    v_old  CLOB;
    v_new  CLOB;
BEGIN
    IF INSERTING THEN
        v_op := 'I';
    ELSIF UPDATING THEN
        v_op := 'U';
    ELSE
        v_op := 'D';
    END IF;
    IF NOT INSERTING THEN
        SELECT JSON_OBJECT(
                   'alert_date' VALUE :OLD.ALERT_DATE,
                   'offender_book_id' VALUE :OLD.OFFENDER_BOOK_ID,
                   'root_offender_id' VALUE :OLD.ROOT_OFFENDER_ID,
                   'alert_seq' VALUE :OLD.ALERT_SEQ,
                   'alert_type' VALUE :OLD.ALERT_TYPE,
                   'alert_code' VALUE :OLD.ALERT_CODE,
                   'authorize_person_text' VALUE :OLD.AUTHORIZE_PERSON_TEXT,
                   'create_date' VALUE :OLD.CREATE_DATE,
                   'alert_status' VALUE :OLD.ALERT_STATUS,
                   'verified_flag' VALUE :OLD.VERIFIED_FLAG,
                   'expiry_date' VALUE :OLD.EXPIRY_DATE,
                   'comment_text' VALUE :OLD.COMMENT_TEXT,
                   'caseload_id' VALUE :OLD.CASELOAD_ID,
                   'modify_user_id' VALUE :OLD.MODIFY_USER_ID,
                   'modify_datetime' VALUE :OLD.MODIFY_DATETIME,
                   'caseload_type' VALUE :OLD.CASELOAD_TYPE,
                   'create_datetime' VALUE :OLD.CREATE_DATETIME,
                   'create_user_id' VALUE :OLD.CREATE_USER_ID,
                   'audit_timestamp' VALUE :OLD.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :OLD.AUDIT_USER_ID,
                   'audit_module_name' VALUE :OLD.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :OLD.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :OLD.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :OLD.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :OLD.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_old FROM DUAL;
    END IF;
    IF NOT DELETING THEN
        SELECT JSON_OBJECT(
                   'alert_date' VALUE :NEW.ALERT_DATE,
                   'offender_book_id' VALUE :NEW.OFFENDER_BOOK_ID,
                   'root_offender_id' VALUE :NEW.ROOT_OFFENDER_ID,
                   'alert_seq' VALUE :NEW.ALERT_SEQ,
                   'alert_type' VALUE :NEW.ALERT_TYPE,
                   'alert_code' VALUE :NEW.ALERT_CODE,
                   'authorize_person_text' VALUE :NEW.AUTHORIZE_PERSON_TEXT,
                   'create_date' VALUE :NEW.CREATE_DATE,
                   'alert_status' VALUE :NEW.ALERT_STATUS,
                   'verified_flag' VALUE :NEW.VERIFIED_FLAG,
                   'expiry_date' VALUE :NEW.EXPIRY_DATE,
                   'comment_text' VALUE :NEW.COMMENT_TEXT,
                   'caseload_id' VALUE :NEW.CASELOAD_ID,
                   'modify_user_id' VALUE :NEW.MODIFY_USER_ID,
                   'modify_datetime' VALUE :NEW.MODIFY_DATETIME,
                   'caseload_type' VALUE :NEW.CASELOAD_TYPE,
                   'create_datetime' VALUE :NEW.CREATE_DATETIME,
                   'create_user_id' VALUE :NEW.CREATE_USER_ID,
                   'audit_timestamp' VALUE :NEW.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :NEW.AUDIT_USER_ID,
                   'audit_module_name' VALUE :NEW.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :NEW.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :NEW.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :NEW.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :NEW.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_new FROM DUAL;
    END IF;
    INSERT INTO ALERTSYNC_JOURNAL
        (JOURNAL_ID, TABLE_NAME, OPERATION, OLD_ROW, NEW_ROW,
         MODULE_NAME, ADDITIONAL_INFO, USER_ID, TXID)
    VALUES (
        ALERTSYNC_JOURNAL_SEQ.NEXTVAL, 'offender_alerts', v_op, v_old, v_new,
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                        SYS_CONTEXT('USERENV', 'MODULE')), 1, 65),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                        SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                        SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32),
        DBMS_TRANSACTION.LOCAL_TRANSACTION_ID);
END;
/

CREATE OR REPLACE TRIGGER ALERTSYNC_OFFENDERS_JNL
    AFTER INSERT OR UPDATE OR DELETE ON OMS_OWNER.OFFENDERS
    FOR EACH ROW
DECLARE
    v_op   CHAR(1);
    v_old  CLOB;
    v_new  CLOB;
BEGIN
    IF INSERTING THEN
        v_op := 'I';
    ELSIF UPDATING THEN
        v_op := 'U';
    ELSE
        v_op := 'D';
    END IF;
    IF NOT INSERTING THEN
        SELECT JSON_OBJECT(
                   'offender_id' VALUE :OLD.OFFENDER_ID,
                   'offender_id_display' VALUE :OLD.OFFENDER_ID_DISPLAY,
                   'root_offender_id' VALUE :OLD.ROOT_OFFENDER_ID,
                   'create_datetime' VALUE :OLD.CREATE_DATETIME,
                   'create_user_id' VALUE :OLD.CREATE_USER_ID,
                   'modify_datetime' VALUE :OLD.MODIFY_DATETIME,
                   'modify_user_id' VALUE :OLD.MODIFY_USER_ID,
                   'audit_timestamp' VALUE :OLD.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :OLD.AUDIT_USER_ID,
                   'audit_module_name' VALUE :OLD.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :OLD.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :OLD.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :OLD.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :OLD.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_old FROM DUAL;
    END IF;
    IF NOT DELETING THEN
        SELECT JSON_OBJECT(
                   'offender_id' VALUE :NEW.OFFENDER_ID,
                   'offender_id_display' VALUE :NEW.OFFENDER_ID_DISPLAY,
                   'root_offender_id' VALUE :NEW.ROOT_OFFENDER_ID,
                   'create_datetime' VALUE :NEW.CREATE_DATETIME,
                   'create_user_id' VALUE :NEW.CREATE_USER_ID,
                   'modify_datetime' VALUE :NEW.MODIFY_DATETIME,
                   'modify_user_id' VALUE :NEW.MODIFY_USER_ID,
                   'audit_timestamp' VALUE :NEW.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :NEW.AUDIT_USER_ID,
                   'audit_module_name' VALUE :NEW.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :NEW.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :NEW.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :NEW.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :NEW.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_new FROM DUAL;
    END IF;
    INSERT INTO ALERTSYNC_JOURNAL
        (JOURNAL_ID, TABLE_NAME, OPERATION, OLD_ROW, NEW_ROW,
         MODULE_NAME, ADDITIONAL_INFO, USER_ID, TXID)
    VALUES (
        ALERTSYNC_JOURNAL_SEQ.NEXTVAL, 'offenders', v_op, v_old, v_new,
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                        SYS_CONTEXT('USERENV', 'MODULE')), 1, 65),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                        SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                        SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32),
        DBMS_TRANSACTION.LOCAL_TRANSACTION_ID);
END;
/

CREATE OR REPLACE TRIGGER ALERTSYNC_BOOKINGS_JNL
    AFTER INSERT OR DELETE OR UPDATE OF BOOKING_SEQ, OFFENDER_ID, ROOT_OFFENDER_ID
    ON OMS_OWNER.OFFENDER_BOOKINGS
    FOR EACH ROW
DECLARE
    v_op   CHAR(1);
    v_old  CLOB;
    v_new  CLOB;
BEGIN
    -- An update that leaves the three columns as they were is no change here.
    IF UPDATING
       AND (:OLD.BOOKING_SEQ = :NEW.BOOKING_SEQ OR (:OLD.BOOKING_SEQ IS NULL AND :NEW.BOOKING_SEQ IS NULL))
           AND (:OLD.OFFENDER_ID = :NEW.OFFENDER_ID OR (:OLD.OFFENDER_ID IS NULL AND :NEW.OFFENDER_ID IS NULL))
           AND (:OLD.ROOT_OFFENDER_ID = :NEW.ROOT_OFFENDER_ID OR (:OLD.ROOT_OFFENDER_ID IS NULL AND :NEW.ROOT_OFFENDER_ID IS NULL))
    THEN
        RETURN;
    END IF;
    IF INSERTING THEN
        v_op := 'I';
    ELSIF UPDATING THEN
        v_op := 'U';
    ELSE
        v_op := 'D';
    END IF;
    IF NOT INSERTING THEN
        SELECT JSON_OBJECT(
                   'offender_book_id' VALUE :OLD.OFFENDER_BOOK_ID,
                   'booking_begin_date' VALUE :OLD.BOOKING_BEGIN_DATE,
                   'offender_id' VALUE :OLD.OFFENDER_ID,
                   'agy_loc_id' VALUE :OLD.AGY_LOC_ID,
                   'active_flag' VALUE :OLD.ACTIVE_FLAG,
                   'root_offender_id' VALUE :OLD.ROOT_OFFENDER_ID,
                   'booking_seq' VALUE :OLD.BOOKING_SEQ,
                   'create_datetime' VALUE :OLD.CREATE_DATETIME,
                   'create_user_id' VALUE :OLD.CREATE_USER_ID,
                   'modify_datetime' VALUE :OLD.MODIFY_DATETIME,
                   'modify_user_id' VALUE :OLD.MODIFY_USER_ID,
                   'audit_timestamp' VALUE :OLD.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :OLD.AUDIT_USER_ID,
                   'audit_module_name' VALUE :OLD.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :OLD.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :OLD.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :OLD.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :OLD.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_old FROM DUAL;
    END IF;
    IF NOT DELETING THEN
        SELECT JSON_OBJECT(
                   'offender_book_id' VALUE :NEW.OFFENDER_BOOK_ID,
                   'booking_begin_date' VALUE :NEW.BOOKING_BEGIN_DATE,
                   'offender_id' VALUE :NEW.OFFENDER_ID,
                   'agy_loc_id' VALUE :NEW.AGY_LOC_ID,
                   'active_flag' VALUE :NEW.ACTIVE_FLAG,
                   'root_offender_id' VALUE :NEW.ROOT_OFFENDER_ID,
                   'booking_seq' VALUE :NEW.BOOKING_SEQ,
                   'create_datetime' VALUE :NEW.CREATE_DATETIME,
                   'create_user_id' VALUE :NEW.CREATE_USER_ID,
                   'modify_datetime' VALUE :NEW.MODIFY_DATETIME,
                   'modify_user_id' VALUE :NEW.MODIFY_USER_ID,
                   'audit_timestamp' VALUE :NEW.AUDIT_TIMESTAMP,
                   'audit_user_id' VALUE :NEW.AUDIT_USER_ID,
                   'audit_module_name' VALUE :NEW.AUDIT_MODULE_NAME,
                   'audit_client_user_id' VALUE :NEW.AUDIT_CLIENT_USER_ID,
                   'audit_client_ip_address' VALUE :NEW.AUDIT_CLIENT_IP_ADDRESS,
                   'audit_client_workstation_name' VALUE :NEW.AUDIT_CLIENT_WORKSTATION_NAME,
                   'audit_additional_info' VALUE :NEW.AUDIT_ADDITIONAL_INFO
                   NULL ON NULL RETURNING CLOB)
          INTO v_new FROM DUAL;
    END IF;
    INSERT INTO ALERTSYNC_JOURNAL
        (JOURNAL_ID, TABLE_NAME, OPERATION, OLD_ROW, NEW_ROW,
         MODULE_NAME, ADDITIONAL_INFO, USER_ID, TXID)
    VALUES (
        ALERTSYNC_JOURNAL_SEQ.NEXTVAL, 'offender_bookings', v_op, v_old, v_new,
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                        SYS_CONTEXT('USERENV', 'MODULE')), 1, 65),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                        SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256),
        SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                        SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32),
        DBMS_TRANSACTION.LOCAL_TRANSACTION_ID);
END;
/
