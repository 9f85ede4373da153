-- What apply nomis needs beyond 0003-0006, counterpart of
-- deploy/dps/migrations/0006_apply_outbox.sql: each outcome (and the DLQ
-- entry of a refused or held command) is published from the outbox alone,
-- so a row names the prisoner, the source position and commit time, and a
-- FAILED or held command's row carries the command record as consumed. The
-- command bytes hold alert text: never log them. Rows are kept after
-- publishing (published_at set) until an operator prunes them.
--
-- alertsync_conflicts: a conflict decided by apply nomis (DESIGN.md
-- guarantee 4): both sides changed the alert before either change synced;
-- the later source commit won, ties to DPS. The NOMIS row's commit time is
-- pg_xact_commit_timestamp of its last change here, ORA_ROWSCN's time on
-- Oracle; NULL when unknown (the row was deleted in NOMIS).
--
-- Oracle: deploy/oracle/migrations/0008_apply_outbox.sql.
ALTER TABLE alertsync.alertsync_outcome_outbox
    ADD COLUMN prison_number      varchar(10),
    ADD COLUMN origin_side        varchar(5),
    ADD COLUMN source_commit_pos  bigint,
    ADD COLUMN source_change_pos  bigint,
    ADD COLUMN source_commit_time timestamptz,
    -- The command as consumed, for the DLQ entry of a FAILED (or held)
    -- command; NULL otherwise.
    ADD COLUMN dlq_topic          varchar(255),
    ADD COLUMN dlq_partition      integer,
    ADD COLUMN dlq_offset         bigint,
    ADD COLUMN dlq_key            bytea,
    ADD COLUMN dlq_value          bytea,
    ADD COLUMN dlq_error_kind     varchar(40),
    ADD COLUMN dlq_error          text,
    ADD COLUMN dlq_held_behind    varchar(255),
    ADD COLUMN alert_key          varchar(100);

CREATE TABLE alertsync.alertsync_conflicts (
    id                 bigint       GENERATED ALWAYS AS IDENTITY
        CONSTRAINT alertsync_conflicts_pk PRIMARY KEY,
    command_id         varchar(64)  NOT NULL,
    dps_alert_id       uuid         NOT NULL,
    offender_book_id   numeric(10),
    alert_seq          numeric(6),
    winner             varchar(5)   NOT NULL
        CONSTRAINT alertsync_conflicts_winner_check CHECK (winner IN ('DPS', 'NOMIS')),
    source_commit_time timestamptz  NOT NULL,
    target_commit_time timestamptz,
    decided_at         timestamptz  NOT NULL DEFAULT now()
);

CREATE INDEX alertsync_conflicts_alert_idx ON alertsync.alertsync_conflicts (dps_alert_id);
