-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Outcomes of commands applied to NOMIS, counterpart of
-- deploy/nomis/migrations/0005_outcome_outbox.sql. Differences: the identity
-- column needs 12c+; timestamptz is TIMESTAMP WITH TIME ZONE; the partial
-- index becomes a function-based index on
--   CASE WHEN PUBLISHED_AT IS NULL THEN ID END
-- (NULL keys are not indexed, so it holds only unpublished rows). The relay
-- must filter and order by that same expression for Oracle to use it:
--   ... WHERE CASE WHEN PUBLISHED_AT IS NULL THEN ID END IS NOT NULL
--       ORDER BY CASE WHEN PUBLISHED_AT IS NULL THEN ID END
-- Idempotent (ORA-00955 ignored).
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_OUTCOME_OUTBOX (
            ID               NUMBER(19) GENERATED ALWAYS AS IDENTITY
                CONSTRAINT ALERTSYNC_OUTCOME_OUTBOX_PK PRIMARY KEY,
            COMMAND_ID       VARCHAR2(64 CHAR)  NOT NULL,
            OUTCOME          VARCHAR2(12)       NOT NULL
                CONSTRAINT ALERTSYNC_OUTBOX_OUTCOME_CK
                CHECK (OUTCOME IN ('APPLIED', 'SKIPPED', 'CONFLICT', 'FAILED')),
            REASON           VARCHAR2(255 CHAR),
            DPS_ALERT_ID     VARCHAR2(36),
            OFFENDER_BOOK_ID NUMBER(10),
            ALERT_SEQ        NUMBER(6),
            CREATED_AT       TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            PUBLISHED_AT     TIMESTAMP WITH TIME ZONE
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
        CREATE INDEX ALERTSYNC_OUTBOX_UNPUB_IX
            ON ALERTSYNC_OUTCOME_OUTBOX (CASE WHEN PUBLISHED_AT IS NULL THEN ID END)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
