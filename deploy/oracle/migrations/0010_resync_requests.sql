-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Resync requests, counterpart of deploy/nomis/migrations/0013_resync_requests.sql
-- (read the rules there): `alertsync dlq redrive --stage capture.nomis`
-- writes journal rows of TABLE_NAME alertsync_resync_request only through
-- this procedure (definer's rights), so the user running it needs EXECUTE
-- on it (install/apply_user.sql grants it to the apply user), never INSERT
-- on the journal.
--
-- p_requests: a JSON array of the requests' NEW_ROW objects, in order.
-- p_module: the MODULE_NAME to record. p_count: how many the array holds;
-- the procedure raises ORA-20002 when it read another number (JSON_TABLE
-- reads a malformed array as fewer rows unless told to fail, and it is told
-- to: ERROR ON ERROR), so a redrive never reports requests it did not
-- write. The transaction id is taken once the transaction exists
-- (LOCAL_TRANSACTION_ID(TRUE) starts it); the caller commits.
CREATE OR REPLACE PROCEDURE ALERTSYNC_REQUEST_RESYNCS(
    p_requests IN CLOB,
    p_module   IN VARCHAR2,
    p_count    IN NUMBER)
AUTHID DEFINER
AS
    v_txid VARCHAR2(200);
    v_n    NUMBER := 0;
BEGIN
    v_txid := DBMS_TRANSACTION.LOCAL_TRANSACTION_ID(TRUE);
    FOR r IN (SELECT t.IMG
                FROM JSON_TABLE(p_requests, '$[*]' ERROR ON ERROR
                       COLUMNS (N FOR ORDINALITY, IMG VARCHAR2(4000) FORMAT JSON PATH '$')) t
               ORDER BY t.N) LOOP
        INSERT INTO ALERTSYNC_JOURNAL
            (JOURNAL_ID, TABLE_NAME, OPERATION, OLD_ROW, NEW_ROW,
             MODULE_NAME, ADDITIONAL_INFO, USER_ID, TXID)
        VALUES (
            ALERTSYNC_JOURNAL_SEQ.NEXTVAL, 'alertsync_resync_request', 'I', NULL, r.IMG,
            SUBSTR(p_module, 1, 65), NULL, SUBSTR(SYS_CONTEXT('USERENV', 'SESSION_USER'), 1, 32), v_txid);
        v_n := v_n + 1;
    END LOOP;
    IF v_n != p_count THEN
        RAISE_APPLICATION_ERROR(-20002, 'alertsync: read ' || v_n || ' resync requests of ' || p_count);
    END IF;
END;
/
