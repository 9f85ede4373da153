-- Alerts whose commands are held behind one that went to the DLQ, so that
-- later commands for the same alert follow it there and order is kept when
-- `alertsync dlq redrive` replays them. Written by apply nomis in the same
-- transaction as its offsets; removed by the redrive once the held commands
-- are applied.
--
-- Oracle differences: integer NUMBER(10), timestamptz TIMESTAMP WITH TIME
-- ZONE.
CREATE TABLE alertsync.alertsync_dlq_holds (
    -- The alert the held commands concern: "dps:<uuid>" or "nomis:<booking>:<seq>".
    hold_key         varchar(100) NOT NULL CONSTRAINT alertsync_dlq_holds_pk PRIMARY KEY,
    prison_number    varchar(10)  NOT NULL,
    first_command_id varchar(64)  NOT NULL,
    -- Why the first command failed (error class, never alert text).
    reason           varchar(255) NOT NULL,
    held_commands    integer      NOT NULL DEFAULT 1
        CONSTRAINT alertsync_dlq_holds_count_check CHECK (held_commands >= 1),
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now()
);

CREATE INDEX alertsync_dlq_holds_prison_number_idx ON alertsync.alertsync_dlq_holds (prison_number);
