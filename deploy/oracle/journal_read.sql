-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The commit-ordered journal read of `alertsync capture nomis` on Oracle,
-- the counterpart of the stand-in's alertsync.alertsync_journal_read()
-- (deploy/nomis/migrations/0001 and 0007). One SQL statement, no trailing
-- ';', bind :1 = the most rows to return. Run by the capture user, which
-- reaches the journal as OMS_OWNER.ALERTSYNC_JOURNAL (install/capture_user.sql
-- grants what it needs).
--
-- Position of a row: (COMMIT_SCN, JOURNAL_ID), COMMIT_SCN = ORA_ROWSCN. The
-- journal is created with ROWDEPENDENCIES, so ORA_ROWSCN is the commit SCN
-- of the transaction that wrote the row (without it, it would be the block's
-- latest commit). Journal rows are inserted and deleted, never updated, so
-- it never changes. Journal ids are allocated when the trigger fires, not at
-- commit, hence the SCN first.
--
-- Horizon. Oracle assigns commit SCNs in commit order and a query sees every
-- transaction committed at or below its SCN, so a transaction that is still
-- uncommitted commits later, with a higher SCN, than any row this read
-- returns. The horizon guards the remaining edge (a transaction caught
-- between taking its commit SCN and becoming visible, and SCN propagation
-- between RAC instances): only rows whose ORA_ROWSCN is below the START_SCN
-- of every still-active transaction that holds a lock on the journal (that
-- is, has journalled rows and not yet committed) are returned. The horizon
-- looks only at journal writers, so a long batch elsewhere in the database
-- does not stall the capture; a long NOMIS transaction that wrote journal
-- rows holds back rows committed after it started until it ends, which the
-- same order rule requires anyway. GV$ views cover every RAC instance (on a
-- single instance they equal V$).
--
-- The capture's own DELETE of published rows also locks the journal: commit
-- it before the next read (and read outside any transaction that wrote), or
-- its START_SCN holds the horizon back -- a delay, never a reordering.
--
-- Nothing is skipped as long as the poller reads every remaining row (no
-- "position > last" filter) and deletes rows only after Kafka acknowledged
-- them, as on the stand-in.
--
-- Caveat: ORA_ROWSCN is documented as an upper bound when Oracle can no
-- longer find the transaction's exact commit SCN (delayed block cleanout
-- after the undo slot was reused). The capture reads rows seconds after
-- their commit, while the slot is still there; a backlog older than the undo
-- retention may come out in a slightly different order among transactions
-- that committed close together.
WITH journal_writer_start AS (
    SELECT MIN(t.START_SCN) AS START_SCN
      FROM GV$TRANSACTION t
      JOIN GV$LOCKED_OBJECT l
        ON l.INST_ID = t.INST_ID
       AND l.XIDUSN = t.XIDUSN
       AND l.XIDSLOT = t.XIDSLOT
       AND l.XIDSQN = t.XIDSQN
     WHERE l.OBJECT_ID = (SELECT o.OBJECT_ID
                            FROM ALL_OBJECTS o
                           WHERE o.OWNER = 'OMS_OWNER'
                             AND o.OBJECT_NAME = 'ALERTSYNC_JOURNAL'
                             AND o.OBJECT_TYPE = 'TABLE')
)
SELECT j.JOURNAL_ID, j.TABLE_NAME, j.OPERATION, j.OLD_ROW, j.NEW_ROW, j.MODULE_NAME,
       j.ADDITIONAL_INFO, j.USER_ID, j.TXID, j.CREATED_AT, j.ORA_ROWSCN AS COMMIT_SCN
  FROM OMS_OWNER.ALERTSYNC_JOURNAL j
 CROSS JOIN journal_writer_start h
 WHERE h.START_SCN IS NULL OR j.ORA_ROWSCN < h.START_SCN
 ORDER BY j.ORA_ROWSCN, j.JOURNAL_ID
 FETCH FIRST :1 ROWS ONLY
