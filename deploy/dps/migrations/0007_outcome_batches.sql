-- The outbox becomes one row per apply transaction: every outcome (and DLQ
-- entry) of the batch in one payload (apply/outbox.go describes its
-- format), written with the batch and deleted by the relay once Kafka has
-- acknowledged its records. It replaces alertsync.outcome_outbox (one row
-- per command): half the apply's own writes. The history of outcomes is
-- the alertsync.outcomes topic. The payload holds, for a refused command,
-- the command as consumed, alert text included: never log it.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM alertsync.outcome_outbox WHERE published_at IS NULL) THEN
        RAISE EXCEPTION 'alertsync.outcome_outbox still has unpublished outcomes: run the previous alertsync apply dps until it has published them, then migrate again';
    END IF;
END
$$;
DROP TABLE alertsync.outcome_outbox;

CREATE TABLE alertsync.outcome_batches (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    commands   integer     NOT NULL CONSTRAINT outcome_batches_commands_check CHECK (commands > 0),
    payload    bytea       NOT NULL
);
