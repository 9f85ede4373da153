-- Outcomes of commands applied to NOMIS (alertsync.outcomes topic), written
-- by apply nomis in the same transaction as the write they describe and
-- published afterwards by a relay, which sets published_at once Kafka
-- acknowledged the record. A crash between commit and publish therefore only
-- delays an outcome; consumers deduplicate by command_id. Never store alert
-- text here.
--
-- Oracle differences: the identity column is the same syntax (12c+);
-- timestamptz TIMESTAMP WITH TIME ZONE; the partial index becomes a
-- function-based index on CASE WHEN published_at IS NULL THEN id END.
CREATE TABLE alertsync.alertsync_outcome_outbox (
    id               bigint       GENERATED ALWAYS AS IDENTITY
        CONSTRAINT alertsync_outcome_outbox_pk PRIMARY KEY,
    command_id       varchar(64)  NOT NULL,
    outcome          varchar(12)  NOT NULL
        CONSTRAINT alertsync_outcome_outbox_outcome_check CHECK (outcome IN ('APPLIED', 'SKIPPED', 'CONFLICT', 'FAILED')),
    -- Machine-readable reason for SKIPPED, CONFLICT and FAILED (e.g. STALE_POSITION).
    reason           varchar(255),
    dps_alert_id     uuid,
    offender_book_id numeric(10),
    alert_seq        numeric(6),
    created_at       timestamptz  NOT NULL DEFAULT now(),
    published_at     timestamptz
);

-- The relay reads unpublished outcomes in id order.
CREATE INDEX alertsync_outcome_outbox_unpublished_idx ON alertsync.alertsync_outcome_outbox (id)
    WHERE published_at IS NULL;
