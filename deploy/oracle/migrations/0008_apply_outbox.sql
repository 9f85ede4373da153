-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- What apply nomis needs beyond 0003-0006, counterpart of
-- deploy/nomis/migrations/0011_apply_outbox.sql (read the rules there): the
-- outbox columns an outcome and its DLQ entry are published from, and
-- ALERTSYNC_CONFLICTS, the conflicts apply nomis decided. Differences:
-- varchar is VARCHAR2(n CHAR), bigint NUMBER(19), integer NUMBER(10), bytea
-- BLOB, text CLOB, uuid VARCHAR2(36) (canonical text, as in the mapping),
-- timestamptz TIMESTAMP WITH TIME ZONE with SYSTIMESTAMP defaults; the
-- target commit time is the time of the row's ORA_ROWSCN
-- (SCN_TO_TIMESTAMP). Re-runnable: ORA-01430 (column already added) and
-- ORA-00955 (name already used) are ignored, because Oracle DDL is not
-- transactional.
BEGIN
    EXECUTE IMMEDIATE q'[
        ALTER TABLE ALERTSYNC_OUTCOME_OUTBOX ADD (
            PRISON_NUMBER      VARCHAR2(10 CHAR),
            ORIGIN_SIDE        VARCHAR2(5),
            SOURCE_COMMIT_POS  NUMBER(19),
            SOURCE_CHANGE_POS  NUMBER(19),
            SOURCE_COMMIT_TIME TIMESTAMP WITH TIME ZONE,
            DLQ_TOPIC          VARCHAR2(255 CHAR),
            DLQ_PARTITION      NUMBER(10),
            DLQ_OFFSET         NUMBER(19),
            DLQ_KEY            BLOB,
            DLQ_VALUE          BLOB,
            DLQ_ERROR_KIND     VARCHAR2(40 CHAR),
            DLQ_ERROR          CLOB,
            DLQ_HELD_BEHIND    VARCHAR2(255 CHAR),
            ALERT_KEY          VARCHAR2(100 CHAR)
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -1430 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_CONFLICTS (
            ID                 NUMBER(19) GENERATED ALWAYS AS IDENTITY
                CONSTRAINT ALERTSYNC_CONFLICTS_PK PRIMARY KEY,
            COMMAND_ID         VARCHAR2(64 CHAR)        NOT NULL,
            DPS_ALERT_ID       VARCHAR2(36)             NOT NULL,
            OFFENDER_BOOK_ID   NUMBER(10),
            ALERT_SEQ          NUMBER(6),
            WINNER             VARCHAR2(5)              NOT NULL
                CONSTRAINT ALERTSYNC_CONFLICTS_WINNER_CK CHECK (WINNER IN ('DPS', 'NOMIS')),
            SOURCE_COMMIT_TIME TIMESTAMP WITH TIME ZONE NOT NULL,
            TARGET_COMMIT_TIME TIMESTAMP WITH TIME ZONE,
            DECIDED_AT         TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
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
        CREATE INDEX ALERTSYNC_CONFLICTS_ALERT_IX ON ALERTSYNC_CONFLICTS (DPS_ALERT_ID)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
