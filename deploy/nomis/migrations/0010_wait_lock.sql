-- Wake-ups signalled by an advisory lock instead of a flag table
-- (nomis.trigger_overhead).
--
-- 0009 made writers notify only while the capture waits, reading
-- alertsync_listener.waiting in a statement trigger on the journal. That
-- read (a second trigger and an executor run per journal INSERT) cost the
-- writers about as much as the NOTIFY it saved. Here the row function itself
-- asks the lock manager instead:
--
--   * the capture, before it waits, takes the session advisory lock
--     7020111763708406132 ('alrtwait' as a big-endian int8; the capture's
--     pgWaitKey) exclusively, and releases it when woken (or when its
--     session ends: a capture that dies waiting leaves nothing set);
--   * a journal-writing transaction tries the same lock shared
--     (pg_try_advisory_xact_lock_shared, never waits): refused means a
--     capture is waiting, so it notifies; granted, it holds the shared lock
--     until it commits or rolls back.
--
-- No race is left: the capture can take the lock only when no writer holds
-- it shared, that is when every writer that did not notify has ended; its
-- journal check after taking the lock sees all their committed rows, and
-- every later writer notifies. A writer holding the lock shared only keeps
-- the capture from waiting (it polls meanwhile), never the reverse.
-- Each journal-writing transaction holds one more lock-table entry (see
-- max_locks_per_transaction); advisory locks are per database, as the
-- journal is.
--
-- Everything else in the row function is as in 0009, every name
-- schema-qualified for the same reasons.
DROP TRIGGER alertsync_journal_notify ON alertsync.alertsync_journal;
DROP FUNCTION alertsync.alertsync_journal_notify();
DROP TABLE alertsync.alertsync_listener;

CREATE OR REPLACE FUNCTION alertsync.alertsync_journal_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    -- An unset setting is NULL; one set earlier in the session with SET
    -- LOCAL reads as '' afterwards: both mean "none".
    INSERT INTO alertsync.alertsync_journal
        (table_name, operation, old_row, new_row, module_name, additional_info, user_id, txid)
    VALUES (
        TG_TABLE_NAME,
        pg_catalog.left(TG_OP, 1),         -- INSERT, UPDATE, DELETE: I, U, D
        pg_catalog.to_json(OLD),           -- NULL on INSERT
        pg_catalog.to_json(NEW),           -- NULL on DELETE
        pg_catalog.left(CASE WHEN pg_catalog.current_setting('nomis.audit_module_name', true) OPERATOR(pg_catalog.<>) ''
                             THEN pg_catalog.current_setting('nomis.audit_module_name', true) END, 65),
        pg_catalog.left(CASE WHEN pg_catalog.current_setting('nomis.audit_additional_info', true) OPERATOR(pg_catalog.<>) ''
                             THEN pg_catalog.current_setting('nomis.audit_additional_info', true) END, 256),
        pg_catalog.left(CASE WHEN pg_catalog.current_setting('nomis.audit_user_id', true) OPERATOR(pg_catalog.<>) ''
                             THEN pg_catalog.current_setting('nomis.audit_user_id', true)
                             ELSE session_user END, 32),
        pg_catalog.txid_current());
    -- A waiting capture holds the lock exclusively: wake it at commit
    -- (NOTIFY is transactional; one per transaction however many rows).
    IF NOT pg_catalog.pg_try_advisory_xact_lock_shared(7020111763708406132) THEN
        PERFORM pg_catalog.pg_notify('alertsync_journal', '');
    END IF;
    RETURN NULL;
END
$$;
