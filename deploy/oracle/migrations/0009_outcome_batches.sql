-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The outbox becomes one row per apply transaction, counterpart of
-- deploy/nomis/migrations/0012_outcome_batches.sql (read the rules there):
-- every outcome (and DLQ entry) of the batch in one payload
-- (apply/outbox.go describes its format), written with the batch and
-- deleted by the relay once Kafka has acknowledged its records. It
-- replaces ALERTSYNC_OUTCOME_OUTBOX (one row per command, 0005 and 0008).
-- The payload holds, for a refused command, the command as consumed,
-- alert text included: never log it. Differences: bytea is BLOB, integer
-- NUMBER(6) (at most apply.batch_commands, 100000), timestamptz TIMESTAMP
-- WITH TIME ZONE with a SYSTIMESTAMP default; the identity column needs
-- 12c+.
--
-- Re-runnable, because Oracle DDL is not transactional: the old outbox is
-- dropped only when it holds no unpublished outcome (else the migration
-- stops, ORA-20001: run the previous alertsync apply nomis until it has
-- published them, then migrate again); ORA-00942 (already dropped) and
-- ORA-00955 (already created) are ignored.
DECLARE
    v_unpublished NUMBER;
BEGIN
    EXECUTE IMMEDIATE 'SELECT COUNT(*) FROM ALERTSYNC_OUTCOME_OUTBOX WHERE PUBLISHED_AT IS NULL'
        INTO v_unpublished;
    IF v_unpublished > 0 THEN
        RAISE_APPLICATION_ERROR(-20001, 'ALERTSYNC_OUTCOME_OUTBOX still has unpublished outcomes: run the previous '
            || 'alertsync apply nomis until it has published them, then migrate again');
    END IF;
    EXECUTE IMMEDIATE 'DROP TABLE ALERTSYNC_OUTCOME_OUTBOX PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_OUTCOME_BATCHES (
            ID         NUMBER(19) GENERATED ALWAYS AS IDENTITY
                CONSTRAINT ALERTSYNC_OUTCOME_BATCHES_PK PRIMARY KEY,
            CREATED_AT TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            COMMANDS   NUMBER(6)                NOT NULL
                CONSTRAINT ALERTSYNC_OUTCOME_BATCH_CMD_CK CHECK (COMMANDS > 0),
            PAYLOAD    BLOB                     NOT NULL
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
