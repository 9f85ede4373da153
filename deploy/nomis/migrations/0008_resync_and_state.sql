-- Bookkeeping of `alertsync capture nomis` beyond the journal.
--
-- alertsync_resync: prisoner resyncs (ADR004) waiting to be read. A journal
-- change that makes NOMIS's current-booking view authoritative for a
-- prisoner (new current booking, recall switch, booking moved, merge) or a
-- booking-copy insert records one here, in the same transaction that
-- deletes the published journal rows, due capture.resync_delay later; a
-- later such change moves due_at on (debounce), so that the copies NOMIS
-- makes after a new booking are inside the snapshot. The capture reads the
-- snapshot when due, publishes it, and removes the row once Kafka has
-- acknowledged it, so a resync survives a crash between the two.
--
-- alertsync_capture_state: one row per completed initial load (name
-- 'initial_load'): the snapshot position it was read at and its counts. No
-- row means the next start loads (or `capture nomis --snapshot`).
--
-- Oracle: deploy/oracle/migrations/0007_resync_and_state.sql.
CREATE TABLE alertsync.alertsync_resync (
    offender_no  varchar(10)  NOT NULL CONSTRAINT alertsync_resync_pk PRIMARY KEY,
    due_at       timestamptz  NOT NULL,
    reason       varchar(30)  NOT NULL,
    requested_at timestamptz  NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE alertsync.alertsync_capture_state (
    name            varchar(30)  NOT NULL CONSTRAINT alertsync_capture_state_pk PRIMARY KEY,
    position_commit bigint       NOT NULL,
    position_change bigint       NOT NULL,
    alerts          bigint       NOT NULL,
    prisoners       bigint       NOT NULL,
    completed_at    timestamptz  NOT NULL
);
