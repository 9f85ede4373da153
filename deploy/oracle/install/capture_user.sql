-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The least-privilege user of `alertsync capture nomis`. Run by a DBA with
-- SQL*Plus or SQLcl after the migrations (the grants name their objects):
--   sqlplus / as sysdba @capture_user.sql
-- The password is the SQL*Plus substitution variable
-- alertsync_capture_password, prompted for, never stored here.
--
-- What the capture does and the grant that allows it:
--   read and delete published journal rows -> SELECT, DELETE on the journal
--   add the DPS id to alert records        -> SELECT on the mapping
--   resync snapshots, initial load         -> SELECT on the NOMIS tables
--   commit-order horizon (journal_read.sql) -> SELECT on GV$TRANSACTION,
--                                             GV$LOCKED_OBJECT (granted on
--                                             the SYS.GV_$ views behind the
--                                             public synonyms)
--   prisoner resyncs, initial-load record   -> SELECT, INSERT, UPDATE, DELETE
--                                             on ALERTSYNC_RESYNC; SELECT,
--                                             INSERT, UPDATE on
--                                             ALERTSYNC_CAPTURE_STATE (0007)
--   one capture per database                -> EXECUTE on DBMS_LOCK (user
--                                             lock ALERTSYNC_CAPTURE_NOMIS);
--                                             SELECT on GV$LOCK, GV$SESSION
--                                             and SYS.DBMS_LOCK_ALLOCATED to
--                                             name the session holding it
--   snapshot position (current SCN)         -> EXECUTE on DBMS_FLASHBACK
--                                             (GET_SYSTEM_CHANGE_NUMBER only)
-- Nothing else: no INSERT/UPDATE on the journal, the mapping or any NOMIS
-- table, no system privilege beyond CREATE SESSION. The capture's SQL is in
-- capture/nomis/oracle.go; run it with capture.migrate=false (the
-- migrations run as OMS_OWNER: `alertsync migrate nomis`).
CREATE USER ALERTSYNC_CAPTURE IDENTIFIED BY "&&alertsync_capture_password"
    DEFAULT TABLESPACE USERS QUOTA 0 ON USERS;

GRANT CREATE SESSION TO ALERTSYNC_CAPTURE;

GRANT SELECT, DELETE ON OMS_OWNER.ALERTSYNC_JOURNAL TO ALERTSYNC_CAPTURE;

GRANT SELECT ON OMS_OWNER.ALERTSYNC_ALERT_MAPPING TO ALERTSYNC_CAPTURE;

GRANT SELECT ON OMS_OWNER.OFFENDERS TO ALERTSYNC_CAPTURE;

GRANT SELECT ON OMS_OWNER.OFFENDER_BOOKINGS TO ALERTSYNC_CAPTURE;

GRANT SELECT ON OMS_OWNER.OFFENDER_ALERTS TO ALERTSYNC_CAPTURE;

GRANT SELECT ON SYS.GV_$TRANSACTION TO ALERTSYNC_CAPTURE;

GRANT SELECT ON SYS.GV_$LOCKED_OBJECT TO ALERTSYNC_CAPTURE;

GRANT SELECT, INSERT, UPDATE, DELETE ON OMS_OWNER.ALERTSYNC_RESYNC TO ALERTSYNC_CAPTURE;

GRANT SELECT, INSERT, UPDATE ON OMS_OWNER.ALERTSYNC_CAPTURE_STATE TO ALERTSYNC_CAPTURE;

GRANT EXECUTE ON SYS.DBMS_LOCK TO ALERTSYNC_CAPTURE;

GRANT EXECUTE ON SYS.DBMS_FLASHBACK TO ALERTSYNC_CAPTURE;

GRANT SELECT ON SYS.GV_$LOCK TO ALERTSYNC_CAPTURE;

GRANT SELECT ON SYS.GV_$SESSION TO ALERTSYNC_CAPTURE;

GRANT SELECT ON SYS.DBMS_LOCK_ALLOCATED TO ALERTSYNC_CAPTURE;
