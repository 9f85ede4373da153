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
-- Nothing else: no INSERT/UPDATE anywhere, no system privilege beyond
-- CREATE SESSION.
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
