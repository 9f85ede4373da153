-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The least-privilege user of `alertsync apply nomis`. Run by a DBA with
-- SQL*Plus or SQLcl after the migrations:
--   sqlplus / as sysdba @apply_user.sql
-- The password is the SQL*Plus substitution variable alertsync_apply_password,
-- prompted for, never stored here.
--
-- What apply does and the grant that allows it:
--   create, update, delete alerts (ALERT_SEQ = max + 1 in the booking)
--                              -> SELECT, INSERT, UPDATE, DELETE on OFFENDER_ALERTS
--   find bookings and prisoners -> SELECT on OFFENDERS, OFFENDER_BOOKINGS
--   validate type and code      -> SELECT on REFERENCE_CODES
--   keep the mapping, fenced offsets, outcome batches, DLQ holds and conflicts in the
--   same transaction as the write
--                              -> SELECT, INSERT, UPDATE (and DELETE where the
--                                 row goes away: published outcome batches,
--                                 released holds) on the bookkeeping tables
--   ask the capture for prisoner resyncs (alertsync dlq redrive --stage
--   capture.nomis, run with this user's nomis.dsn)
--                              -> EXECUTE on ALERTSYNC_REQUEST_RESYNCS, which
--                                 writes resync requests to the journal and
--                                 nothing else (no INSERT on the journal)
--   lock the current booking before allocating ALERT_SEQ (SELECT ... FOR
--   UPDATE)               -> SELECT on OFFENDER_BOOKINGS (SELECT, unlike the
--                                 READ privilege, allows FOR UPDATE)
-- Apply marks its writes with DBMS_APPLICATION_INFO.SET_MODULE
-- ('DPS_SYNCHRONISATION', ...) (EXECUTE granted to PUBLIC by default) and,
-- where NOMIS's context package is available to it, the NOMIS context
-- (AUDIT_MODULE_NAME, AUDIT_USER_ID through OMS_OWNER.NOMIS_CONTEXT, whose
-- EXECUTE the stand-in grants to PUBLIC; on a real NOMIS grant EXECUTE on
-- its context package, or the journal records the apply user as the user);
-- the journal triggers read either (0002_journal_triggers.sql).
CREATE USER ALERTSYNC_APPLY IDENTIFIED BY "&&alertsync_apply_password"
    DEFAULT TABLESPACE USERS QUOTA 0 ON USERS;

GRANT CREATE SESSION TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT, UPDATE, DELETE ON OMS_OWNER.OFFENDER_ALERTS TO ALERTSYNC_APPLY;

GRANT SELECT ON OMS_OWNER.OFFENDERS TO ALERTSYNC_APPLY;

GRANT SELECT ON OMS_OWNER.OFFENDER_BOOKINGS TO ALERTSYNC_APPLY;

GRANT SELECT ON OMS_OWNER.REFERENCE_CODES TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT, UPDATE ON OMS_OWNER.ALERTSYNC_ALERT_MAPPING TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT, UPDATE ON OMS_OWNER.ALERTSYNC_CONSUMER_OFFSETS TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT, DELETE ON OMS_OWNER.ALERTSYNC_OUTCOME_BATCHES TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT, UPDATE, DELETE ON OMS_OWNER.ALERTSYNC_DLQ_HOLDS TO ALERTSYNC_APPLY;

GRANT SELECT, INSERT ON OMS_OWNER.ALERTSYNC_CONFLICTS TO ALERTSYNC_APPLY;

GRANT EXECUTE ON OMS_OWNER.ALERTSYNC_REQUEST_RESYNCS TO ALERTSYNC_APPLY;
