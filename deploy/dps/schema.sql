-- DPS alerts service tables (schema public), as the real hmpps-alerts-api
-- keeps them; see DOMAIN.md. alertsync does not own these tables: it reads
-- them through logical replication and writes them like the service does. This
-- file stands the service in for the demo and the tests.
--
-- Timestamps are `timestamp` (without time zone) holding Europe/London local
-- wall-clock time, as in the real service; convert them with that zone.
--
-- Idempotent: every statement may run again on a database that already has
-- the tables.

CREATE TABLE IF NOT EXISTS alert_type (
    id             bigserial   PRIMARY KEY,
    code           varchar(12) NOT NULL UNIQUE,
    description    varchar(40) NOT NULL,
    list_sequence  int         NOT NULL DEFAULT 0,
    created_at     timestamp   NOT NULL DEFAULT now(),
    created_by     varchar(64) NOT NULL,
    modified_at    timestamp,
    modified_by    varchar(64),
    deactivated_at timestamp,
    deactivated_by varchar(64)
);

CREATE TABLE IF NOT EXISTS alert_code (
    id             bigserial   PRIMARY KEY,
    alert_type_id  bigint      NOT NULL REFERENCES alert_type (id),
    code           varchar(12) NOT NULL UNIQUE,
    description    varchar(40) NOT NULL,
    restricted     boolean     NOT NULL DEFAULT false,
    list_sequence  int         NOT NULL DEFAULT 0,
    created_at     timestamp   NOT NULL DEFAULT now(),
    created_by     varchar(64) NOT NULL,
    modified_at    timestamp,
    modified_by    varchar(64),
    deactivated_at timestamp,
    deactivated_by varchar(64)
);

CREATE INDEX IF NOT EXISTS alert_code_alert_type_id_idx ON alert_code (alert_type_id);

-- An alert hangs off the person (prison_number), never a booking. It is active
-- while active_to IS NULL OR active_to > current_date; there is no status
-- column, and nothing prevents two active alerts with the same code (merges
-- produce them). deleted_at marks a soft delete; version is the service's
-- optimistic lock. id is a UUIDv7 chosen by the writer (no default).
CREATE TABLE IF NOT EXISTS alert (
    id                       uuid        PRIMARY KEY,
    alert_code_id            bigint      NOT NULL REFERENCES alert_code (id),
    prison_number            varchar(10) NOT NULL,
    description              text
        CONSTRAINT alert_description_length CHECK (char_length(description) <= 4000),
    authorised_by            varchar(40),
    active_from              date        NOT NULL,
    active_to                date,
    created_at               timestamp   NOT NULL,
    last_modified_at         timestamp,
    deleted_at               timestamp,
    prison_code_when_created varchar(6),
    version                  int         NOT NULL DEFAULT 0
);

CREATE INDEX IF NOT EXISTS alert_prison_number_idx ON alert (prison_number);
CREATE INDEX IF NOT EXISTS alert_alert_code_id_idx ON alert (alert_code_id);

-- Capture needs the whole old row on update and delete (before-images for
-- conflict detection and tombstones).
ALTER TABLE alert REPLICA IDENTITY FULL;

-- One row per change to an alert. source tells who made it: DPS (a user of
-- the service) or NOMIS (the sync); the sync does not send NOMIS-sourced
-- changes back. The *_updated flags say which fields an UPDATED event changed.
CREATE TABLE IF NOT EXISTS audit_event (
    id                       uuid         PRIMARY KEY,
    alert_id                 uuid         NOT NULL REFERENCES alert (id) ON DELETE CASCADE,
    action                   varchar(20)  NOT NULL
        CONSTRAINT audit_event_action_check CHECK (action IN ('CREATED', 'UPDATED', 'DELETED', 'INACTIVE')),
    description              text         NOT NULL,
    actioned_at              timestamp    NOT NULL,
    actioned_by              varchar(64)  NOT NULL,
    actioned_by_display_name varchar(255) NOT NULL,
    source                   varchar(12)  NOT NULL
        CONSTRAINT audit_event_source_check CHECK (source IN ('DPS', 'NOMIS')),
    description_updated      boolean,
    authorised_by_updated    boolean,
    active_from_updated      boolean,
    active_to_updated        boolean
);

CREATE INDEX IF NOT EXISTS audit_event_alert_id_idx ON audit_event (alert_id);
