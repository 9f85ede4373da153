-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The change journal of `alertsync capture nomis` on Oracle, the counterpart
-- of deploy/nomis/migrations/0001_journal.sql (same table and column names,
-- upper-cased by Oracle). Row triggers on the NOMIS tables (0002) append one
-- row per changed row; the capture publishes the rows in commit order and
-- deletes them once Kafka has acknowledged them.
--
-- The sync-owned objects live in the NOMIS schema owner's schema (the
-- migrations run connected as OMS_OWNER, see README.md), hence the
-- ALERTSYNC_ prefix on every name and no schema in the names.
--
-- Oracle DDL commits implicitly, so a migration is not atomic: every
-- statement is written to be re-run after a crash half-way through a
-- migration (CREATE wrapped in a block that ignores ORA-00955 "name is already
-- used by an existing object"; triggers CREATE OR REPLACE).
--
-- Differences from the stand-in:
--   * the sequence is ORDER (on RAC, ids follow allocation order across
--     instances) with CACHE 1000 (ORDER with CACHE still caches on a single
--     instance; on RAC it costs a cross-instance message per value);
--   * the table is created with ROWDEPENDENCIES, so ORA_ROWSCN is the commit
--     SCN of each row's transaction rather than of its block. ROWDEPENDENCIES
--     can only be set by CREATE TABLE: never re-create the table without it;
--   * OLD_ROW/NEW_ROW are CLOB CHECK (... IS JSON) (a NOMIS row image with a
--     4000-byte COMMENT_TEXT does not fit a VARCHAR2(4000));
--   * TXID is DBMS_TRANSACTION.LOCAL_TRANSACTION_ID ("usn.slot.sqn"), a
--     string; no NOTIFY trigger: the Oracle capture polls.
--
-- Commit order: the position of a journal row is (ORA_ROWSCN, JOURNAL_ID);
-- deploy/oracle/journal_read.sql is the read the capture runs.
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE SEQUENCE ALERTSYNC_JOURNAL_SEQ
            START WITH 1 INCREMENT BY 1 NOCYCLE CACHE 1000 ORDER]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_JOURNAL (
            JOURNAL_ID      NUMBER(19)         NOT NULL
                CONSTRAINT ALERTSYNC_JOURNAL_PK PRIMARY KEY,
            -- The changed table, lower case as in the topic names:
            -- offender_alerts, offender_bookings or offenders.
            TABLE_NAME      VARCHAR2(30 CHAR)  NOT NULL,
            OPERATION       CHAR(1)            NOT NULL
                CONSTRAINT ALERTSYNC_JOURNAL_OP_CK CHECK (OPERATION IN ('I', 'U', 'D')),
            -- The row before (U, D) and after (I, U) the change: one key per
            -- column, lower case, NULL ON NULL. Holds alert text: never log it.
            OLD_ROW         CLOB
                CONSTRAINT ALERTSYNC_JOURNAL_OLD_JSON_CK CHECK (OLD_ROW IS JSON),
            NEW_ROW         CLOB
                CONSTRAINT ALERTSYNC_JOURNAL_NEW_JSON_CK CHECK (NEW_ROW IS JSON),
            -- From the writing session's context when the trigger fired (see
            -- 0002), never from the row.
            MODULE_NAME     VARCHAR2(65 CHAR),
            ADDITIONAL_INFO VARCHAR2(256 CHAR),
            USER_ID         VARCHAR2(32 CHAR),
            TXID            VARCHAR2(64)       NOT NULL,
            CREATED_AT      TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL
        )
        ROWDEPENDENCIES
        LOB (OLD_ROW, NEW_ROW) STORE AS SECUREFILE]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
