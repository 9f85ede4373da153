-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Removes every sync-owned object from a NOMIS database, and nothing of
-- NOMIS: the journal triggers first (so NOMIS writes never hit a missing
-- journal), then the sync's tables (ALERTSYNC_* only: the journal with any
-- unpublished changes, the alert mapping, offsets, the outcome batches (and
-- the per-command outbox they replaced, if an old install left it), DLQ
-- holds, conflicts, the
-- pending prisoner resyncs and capture state, the migration version table),
-- the journal sequence, and the capture and apply users (dropping a user
-- drops its grants, DBMS_LOCK and DBMS_FLASHBACK included). Run by a DBA
-- with SQL*Plus or SQLcl:
--   sqlplus / as sysdba @uninstall.sql
-- The NOMIS tables and their rows are left as they are. Losing the mapping
-- means the DPS ids of NOMIS alerts must be re-established by a migration
-- run before the sync is installed again.
--
-- Re-runnable: an object already gone (ORA-04080 trigger, ORA-04043
-- procedure, ORA-00942 table, ORA-02289 sequence, ORA-01918 user) is skipped.
--
-- Left in place on purpose: EXECUTE ON SYS.DBMS_LOCK granted to OMS_OWNER by
-- migration_owner.sql, since NOMIS may rely on it itself. If it was granted
-- for alertsync only:  REVOKE EXECUTE ON SYS.DBMS_LOCK FROM OMS_OWNER;

BEGIN
    EXECUTE IMMEDIATE 'DROP TRIGGER OMS_OWNER.ALERTSYNC_ALERTS_JNL';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -4080 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TRIGGER OMS_OWNER.ALERTSYNC_OFFENDERS_JNL';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -4080 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TRIGGER OMS_OWNER.ALERTSYNC_BOOKINGS_JNL';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -4080 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP PROCEDURE OMS_OWNER.ALERTSYNC_REQUEST_RESYNCS';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -4043 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_JOURNAL PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_ALERT_MAPPING PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_CONSUMER_OFFSETS PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_OUTCOME_OUTBOX PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_DLQ_HOLDS PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_RESYNC PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_CAPTURE_STATE PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_CONFLICTS PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP TABLE OMS_OWNER.ALERTSYNC_SCHEMA_MIGRATIONS PURGE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -942 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP SEQUENCE OMS_OWNER.ALERTSYNC_JOURNAL_SEQ';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -2289 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP USER ALERTSYNC_CAPTURE CASCADE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -1918 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE 'DROP USER ALERTSYNC_APPLY CASCADE';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -1918 THEN
            RAISE;
        END IF;
END;
/
