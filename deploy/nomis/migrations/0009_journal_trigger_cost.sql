-- Cheaper journal triggers: the same journal rows for a smaller write cost
-- (nomis.trigger_overhead). Measured on the stand-in (one-row transactions,
-- 4 writers, fsync off): the journal INSERT itself and to_json of the row
-- images are most of the row trigger's cost and stay; what goes is
--   * the NOTIFY on every journal-writing transaction (above all its commit
--     lock, which makes every such transaction commit one at a time: with
--     durable commits, 4 writers ran at 0.67-0.73 of their speed without the
--     triggers with the NOTIFY, 0.89 without it), now sent only while the
--     capture is waiting for one; and
--   * the plpgsql statements around the INSERT (six variable initialisers
--     and tests per row), now expressions inside the one INSERT.
-- SECURITY DEFINER stays (timed: dropping it saves nothing measurable).
--
-- The journal contract is unchanged: same columns, same to_json(OLD/NEW)
-- images, module/additional info/user read from the writing session's
-- settings when the trigger fires ('' or unset is NULL, the user falls back
-- to session_user), cut to 65/256/32 characters; the triggers on the NOMIS
-- tables (0002), the booking trigger's key-column condition included, are
-- untouched and call the replaced function.
--
-- Search path: the function still runs with its owner's rights (SECURITY
-- DEFINER, no grant on schema alertsync for NOMIS's users) and without a SET
-- search_path clause; every function, operator and type name in its body is
-- schema-qualified, so a caller's search_path (even one listing pg_catalog
-- after a schema of its own) cannot redirect it. NULLIF is not used: it
-- looks up "=" through the search path.
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
    RETURN NULL;
END
$$;

-- Wake-ups only for a waiting capture.
--
-- NOTIFY is transactional and its commit lock serialises every notifying
-- transaction's commit (each waits for the previous one's WAL flush), so a
-- NOTIFY at every journal-writing commit costs NOMIS's writers dearly, while
-- a capture that is busy reading the journal needs no wake-up at all. The
-- capture (postgres dialect, Waiter) sets alertsync_listener.waiting before
-- it waits for a notification and clears it when it wakes; the journal's
-- statement trigger notifies only while the flag is set. A capture that dies
-- while waiting leaves the flag set (writers notify nobody until the next
-- capture clears it at start: a small cost, no harm).
--
-- Race: a writer whose statement read the flag just before the capture set
-- it commits without notifying. No row is lost: the capture reads every
-- journal row below its commit horizon whether woken or not. After setting
-- the flag the capture checks whether the journal holds rows and, if so,
-- does not wait; a writer still between its flag read and its commit at that
-- moment is read at the end of the capture's wait, at most capture.poll_max
-- (2 s) after its commit -- the same bound as with no NOTIFY at all.
CREATE TABLE alertsync.alertsync_listener (
    -- One row.
    id      boolean     NOT NULL DEFAULT true CONSTRAINT alertsync_listener_pk PRIMARY KEY
        CONSTRAINT alertsync_listener_one_row CHECK (id),
    waiting boolean     NOT NULL DEFAULT false,
    since   timestamptz
);
INSERT INTO alertsync.alertsync_listener DEFAULT VALUES;

-- The journal INSERT runs inside the SECURITY DEFINER row function, so this
-- statement trigger runs with the owner's rights as well; every name in it
-- is schema-qualified for the same reason as above.
CREATE OR REPLACE FUNCTION alertsync.alertsync_journal_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF (SELECT l.waiting FROM alertsync.alertsync_listener l) THEN
        PERFORM pg_catalog.pg_notify('alertsync_journal', '');
    END IF;
    RETURN NULL;
END
$$;
