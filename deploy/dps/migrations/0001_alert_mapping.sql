-- alertsync's link between a DPS alert and its NOMIS row, kept in the DPS
-- database by apply dps in the same transaction as its write. Rows are never
-- deleted: a deleted alert keeps a tombstoned row (deleted = true) with the
-- last positions applied, so a late or repeated command stays a no-op.
CREATE SCHEMA IF NOT EXISTS alertsync;

CREATE TABLE alertsync.alert_mapping (
    dps_alert_id     uuid        PRIMARY KEY,
    -- NOMIS key (OFFENDER_BOOK_ID, ALERT_SEQ); both NULL while not yet known.
    nomis_booking_id bigint,
    nomis_alert_seq  integer,
    offender_no      varchar(10) NOT NULL,
    mapping_type     varchar(20) NOT NULL
        CONSTRAINT alert_mapping_type_check CHECK (mapping_type IN ('MIGRATED', 'DPS_CREATED', 'NOMIS_CREATED')),
    -- Newest source position applied to this alert from each side, compared
    -- as the pair (commit, change): DPS = (commit LSN, change LSN), NOMIS =
    -- (commit-ordered journal position, journal sequence). NULL = nothing
    -- applied from that side yet.
    dps_commit_pos   bigint,
    dps_change_pos   bigint,
    nomis_commit_pos bigint,
    nomis_change_pos bigint,
    deleted          boolean     NOT NULL DEFAULT false,
    deleted_at       timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT alert_mapping_nomis_key UNIQUE (nomis_booking_id, nomis_alert_seq),
    CONSTRAINT alert_mapping_nomis_key_pair CHECK ((nomis_booking_id IS NULL) = (nomis_alert_seq IS NULL)),
    CONSTRAINT alert_mapping_dps_pos_pair CHECK ((dps_commit_pos IS NULL) = (dps_change_pos IS NULL)),
    CONSTRAINT alert_mapping_nomis_pos_pair CHECK ((nomis_commit_pos IS NULL) = (nomis_change_pos IS NULL)),
    CONSTRAINT alert_mapping_deleted_at CHECK (deleted OR deleted_at IS NULL)
);

-- Prisoner-level resyncs find a prisoner's mappings by prison number.
CREATE INDEX alert_mapping_offender_no_idx ON alertsync.alert_mapping (offender_no);
