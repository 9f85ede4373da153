-- What apply dps needs beyond 0001-0004 to publish each outcome (and the
-- DLQ entry of a refused command) from the outbox alone: the outcome record
-- names the prisoner, the source keys and the source position, and a FAILED
-- or held command's DLQ entry carries the command record as consumed. The
-- command bytes hold alert text: never log them. Rows are kept after
-- publishing (published_at set) until an operator prunes them.
ALTER TABLE alertsync.outcome_outbox
    ADD COLUMN prison_number      varchar(10),
    ADD COLUMN nomis_booking_id   bigint,
    ADD COLUMN nomis_alert_seq    integer,
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

-- A conflict decided by apply dps: both sides changed the alert before
-- either change synced; the later source commit won (ties to DPS).
CREATE TABLE alertsync.conflicts (
    id                bigint       GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id        varchar(64)  NOT NULL,
    dps_alert_id      uuid         NOT NULL,
    winner            varchar(5)   NOT NULL CONSTRAINT conflicts_winner_check CHECK (winner IN ('DPS', 'NOMIS')),
    source_commit_time timestamptz NOT NULL,
    target_commit_time timestamptz,
    decided_at        timestamptz  NOT NULL DEFAULT now()
);
CREATE INDEX conflicts_alert_idx ON alertsync.conflicts (dps_alert_id);
