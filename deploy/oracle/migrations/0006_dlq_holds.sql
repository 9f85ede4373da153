-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Alerts whose commands are held behind one that went to the DLQ,
-- counterpart of deploy/nomis/migrations/0006_dlq_holds.sql. Differences:
-- integer NUMBER(10), timestamptz TIMESTAMP WITH TIME ZONE. Idempotent
-- (ORA-00955 ignored).
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_DLQ_HOLDS (
            -- "dps:<uuid>" or "nomis:<booking>:<seq>".
            HOLD_KEY         VARCHAR2(100 CHAR) NOT NULL
                CONSTRAINT ALERTSYNC_DLQ_HOLDS_PK PRIMARY KEY,
            PRISON_NUMBER    VARCHAR2(10 CHAR)  NOT NULL,
            FIRST_COMMAND_ID VARCHAR2(64 CHAR)  NOT NULL,
            -- Error class, never alert text.
            REASON           VARCHAR2(255 CHAR) NOT NULL,
            HELD_COMMANDS    NUMBER(10)         DEFAULT 1 NOT NULL
                CONSTRAINT ALERTSYNC_DLQ_HOLDS_COUNT_CK CHECK (HELD_COMMANDS >= 1),
            CREATED_AT       TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            UPDATED_AT       TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
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
        CREATE INDEX ALERTSYNC_DLQ_HOLDS_PRISON_IX ON ALERTSYNC_DLQ_HOLDS (PRISON_NUMBER)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
