-- The NOMIS-side link between a NOMIS alert (OFFENDER_BOOK_ID, ALERT_SEQ) and
-- its DPS alert, kept by apply nomis in the same transaction as its write to
-- OFFENDER_ALERTS (alerts the sync created in NOMIS, and MIGRATED ones); read
-- by capture nomis to add the DPS id to alert records. DESIGN.md calls it
-- ALERTSYNC_ALERT_MAPPING. Rows are never deleted: a deleted alert keeps a
-- tombstoned row (deleted_at set) with the last positions applied, so a late
-- or repeated command stays a no-op. When a replace moves a DPS alert to a
-- new NOMIS row, the row's NOMIS key is updated (new ALERT_SEQs are always
-- above the old maximum, so a stale key never points at a reused row).
--
-- Oracle differences: dps_alert_id RAW(16) (or VARCHAR2(36)), bigint
-- NUMBER(19), timestamptz TIMESTAMP WITH TIME ZONE, now() SYSTIMESTAMP.
CREATE TABLE alertsync.alertsync_alert_mapping (
    dps_alert_id     uuid         NOT NULL CONSTRAINT alertsync_alert_mapping_pk PRIMARY KEY,
    offender_book_id numeric(10)  NOT NULL,
    alert_seq        numeric(6)   NOT NULL,
    -- The prison number the alert belongs to (DPS prison_number).
    offender_no      varchar(10)  NOT NULL,
    mapping_type     varchar(20)  NOT NULL
        CONSTRAINT alertsync_alert_mapping_type_check CHECK (mapping_type IN ('MIGRATED', 'DPS_CREATED', 'NOMIS_CREATED')),
    -- Newest source position applied to this alert from each side, compared
    -- as the pair (commit, change): DPS = (commit LSN, change LSN), NOMIS =
    -- (commit time in microseconds, journal id) on the stand-in, (commit SCN,
    -- journal id) on Oracle. NULL = nothing applied from that side yet.
    dps_commit_pos   bigint,
    dps_change_pos   bigint,
    nomis_commit_pos bigint,
    nomis_change_pos bigint,
    -- Set when the alert was deleted (NULL = live).
    deleted_at       timestamptz,
    created_at       timestamptz  NOT NULL DEFAULT now(),
    updated_at       timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT alertsync_alert_mapping_nomis_key UNIQUE (offender_book_id, alert_seq),
    CONSTRAINT alertsync_alert_mapping_dps_pos_pair CHECK ((dps_commit_pos IS NULL) = (dps_change_pos IS NULL)),
    CONSTRAINT alertsync_alert_mapping_nomis_pos_pair CHECK ((nomis_commit_pos IS NULL) = (nomis_change_pos IS NULL))
);

-- Prisoner-level resyncs find a prisoner's mappings by prison number.
CREATE INDEX alertsync_alert_mapping_offender_no_idx ON alertsync.alertsync_alert_mapping (offender_no);
