-- Outcomes of applied commands (alertsync.outcomes topic), written by apply
-- dps in the same transaction as the write they describe and published
-- afterwards by a relay, which sets published_at once Kafka acknowledged the
-- record. A crash between commit and publish therefore only delays an
-- outcome; consumers deduplicate by command_id. Never store alert text here.
CREATE TABLE alertsync.outcome_outbox (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    command_id   varchar(64) NOT NULL,
    outcome      varchar(12) NOT NULL
        CONSTRAINT outcome_outbox_outcome_check CHECK (outcome IN ('APPLIED', 'SKIPPED', 'CONFLICT', 'FAILED')),
    -- Machine-readable reason for SKIPPED, CONFLICT and FAILED (e.g. STALE_POSITION).
    reason       varchar(255),
    dps_alert_id uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

-- The relay reads unpublished outcomes in id order.
CREATE INDEX outcome_outbox_unpublished_idx ON alertsync.outcome_outbox (id) WHERE published_at IS NULL;
