-- The outbox becomes one row per apply transaction: every outcome (and DLQ
-- entry) of the batch in one payload (apply/outbox.go describes its
-- format), written with the batch and deleted by the relay once Kafka has
-- acknowledged its records. It replaces alertsync.alertsync_outcome_outbox (one row
-- per command): half the apply's own writes. The history of outcomes is
-- the alertsync.outcomes topic. The payload holds, for a refused command,
-- the command as consumed, alert text included: never log it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM alertsync.alertsync_outcome_outbox WHERE published_at IS NULL) THEN
        RAISE EXCEPTION 'alertsync.alertsync_outcome_outbox still has unpublished outcomes: run the previous alertsync apply nomis until it has published them, then migrate again';
    END IF;
END
$$;
DROP TABLE alertsync.alertsync_outcome_outbox;

CREATE TABLE alertsync.alertsync_outcome_batches (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    commands   integer     NOT NULL CONSTRAINT alertsync_outcome_batches_commands_check CHECK (commands > 0),
    payload    bytea       NOT NULL
);
