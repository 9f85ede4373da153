-- Row triggers on the NOMIS tables that append to alertsync_journal (0001).
-- They add no column, index or constraint to NOMIS's tables and change no
-- row: AFTER triggers that only insert into the journal. The NOMIS tables
-- must exist (on the stand-in: apply nomis/schema.sql first).
--
-- Module, additional info and user come from the writing session's settings
-- (nomis.audit_module_name, nomis.audit_additional_info, nomis.audit_user_id;
-- see nomis/schema.sql), read when the trigger fires, never from OLD or NEW:
-- a delete thus records the deleting session's module, not the audit module
-- that the deleted row still carries. Values are cut to the NOMIS column
-- lengths, as SYS_CONTEXT does.
--
-- SECURITY DEFINER: the function writes the journal with its owner's rights,
-- so NOMIS's users need no grant on the alertsync schema and cannot write
-- journal rows themselves (an Oracle trigger, too, runs with its owner's
-- rights). A caller's search_path must not be able to redirect it, so every
-- function and operator in it is schema-qualified; the usual
-- `SET search_path` clause is avoided because it costs each row about as
-- much as building the JSON does.
--
-- TRUNCATE is not journalled (NOMIS never truncates these tables).
--
-- Oracle differences: one PL/SQL trigger per table (trigger names unique per
-- schema) with the table name as a literal, JSON_OBJECT(...) over :OLD/:NEW
-- columns with lower-case keys, SYS_CONTEXT('NOMIS', ..., n) for the session
-- values, and for the bookings the column list in the UPDATE OF clause with
-- the change test in the body.
CREATE FUNCTION alertsync.alertsync_journal_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER AS $$
DECLARE
    -- An unset setting is NULL; one set earlier in the session with SET
    -- LOCAL reads as '' afterwards: both mean "none".
    v_module     text := pg_catalog.current_setting('nomis.audit_module_name', true);
    v_additional text := pg_catalog.current_setting('nomis.audit_additional_info', true);
    v_user       text := pg_catalog.current_setting('nomis.audit_user_id', true);
BEGIN
    IF v_module OPERATOR(pg_catalog.=) '' THEN v_module := NULL; END IF;
    IF v_additional OPERATOR(pg_catalog.=) '' THEN v_additional := NULL; END IF;
    IF v_user IS NULL OR v_user OPERATOR(pg_catalog.=) '' THEN v_user := session_user; END IF;
    INSERT INTO alertsync.alertsync_journal
        (table_name, operation, old_row, new_row, module_name, additional_info, user_id, txid)
    VALUES (
        TG_TABLE_NAME,
        pg_catalog.left(TG_OP, 1),         -- INSERT, UPDATE, DELETE: I, U, D
        pg_catalog.to_json(OLD),           -- NULL on INSERT
        pg_catalog.to_json(NEW),           -- NULL on DELETE
        pg_catalog.left(v_module, 65),
        pg_catalog.left(v_additional, 256),
        pg_catalog.left(v_user, 32),
        pg_catalog.txid_current());
    RETURN NULL;
END
$$;

CREATE TRIGGER alertsync_journal
    AFTER INSERT OR UPDATE OR DELETE ON oms_owner.offender_alerts
    FOR EACH ROW EXECUTE FUNCTION alertsync.alertsync_journal_row();

CREATE TRIGGER alertsync_journal
    AFTER INSERT OR UPDATE OR DELETE ON oms_owner.offenders
    FOR EACH ROW EXECUTE FUNCTION alertsync.alertsync_journal_row();

-- Bookings change often (movements, status); only a change of the booking's
-- sequence or of its offender matters to alerts (new booking, recall switch,
-- booking moved, merge). PostgreSQL allows OLD in a WHEN clause only for
-- UPDATE, hence two triggers.
CREATE TRIGGER alertsync_journal
    AFTER INSERT OR DELETE ON oms_owner.offender_bookings
    FOR EACH ROW EXECUTE FUNCTION alertsync.alertsync_journal_row();

CREATE TRIGGER alertsync_journal_keys
    AFTER UPDATE OF booking_seq, offender_id, root_offender_id ON oms_owner.offender_bookings
    FOR EACH ROW
    WHEN (OLD.booking_seq IS DISTINCT FROM NEW.booking_seq
          OR OLD.offender_id IS DISTINCT FROM NEW.offender_id
          OR OLD.root_offender_id IS DISTINCT FROM NEW.root_offender_id)
    EXECUTE FUNCTION alertsync.alertsync_journal_row();
