-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Bookkeeping of `alertsync capture nomis` beyond the journal, counterpart of
-- deploy/nomis/migrations/0008_resync_and_state.sql (read the rules there):
--
-- ALERTSYNC_RESYNC: prisoner resyncs waiting to be read, one row per prison
-- number, recorded in the transaction that deletes the published journal
-- rows (a MERGE that keeps the later DUE_AT), removed once the snapshot is
-- acknowledged.
--
-- ALERTSYNC_CAPTURE_STATE: one row per completed initial load (NAME
-- 'initial_load'): the snapshot position (commit SCN, journal id) and its
-- counts.
--
-- Differences: varchar is VARCHAR2(n CHAR), bigint NUMBER(19), timestamptz
-- TIMESTAMP WITH TIME ZONE, clock_timestamp() SYSTIMESTAMP. The capture
-- user reads and writes both (install/capture_user.sql). Idempotent
-- (ORA-00955 ignored) because Oracle DDL is not transactional.
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_RESYNC (
            OFFENDER_NO  VARCHAR2(10 CHAR)        NOT NULL
                CONSTRAINT ALERTSYNC_RESYNC_PK PRIMARY KEY,
            DUE_AT       TIMESTAMP WITH TIME ZONE NOT NULL,
            REASON       VARCHAR2(30 CHAR)        NOT NULL,
            REQUESTED_AT TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_CAPTURE_STATE (
            NAME            VARCHAR2(30 CHAR)        NOT NULL
                CONSTRAINT ALERTSYNC_CAPTURE_STATE_PK PRIMARY KEY,
            POSITION_COMMIT NUMBER(19)               NOT NULL,
            POSITION_CHANGE NUMBER(19)               NOT NULL,
            ALERTS          NUMBER(19)               NOT NULL,
            PRISONERS       NUMBER(19)               NOT NULL,
            COMPLETED_AT    TIMESTAMP WITH TIME ZONE NOT NULL
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
