-- STAND-IN OF THE REAL NOMIS TABLES. NOT THE REAL NOMIS SCHEMA.
--
-- A PostgreSQL stand-in for the subset of NOMIS (Oracle, schema OMS_OWNER)
-- that alertsync reads and writes: OFFENDERS, OFFENDER_BOOKINGS,
-- OFFENDER_ALERTS and REFERENCE_CODES, with the columns, types, lengths and
-- keys of DOMAIN.md and NOMIS-like audit triggers. It exists for local runs,
-- the demo and the tests, since no Oracle server runs here. alertsync never
-- creates or changes these tables in a real NOMIS; its own objects (journal,
-- triggers, mapping, bookkeeping) come from nomis/migrations.
--
-- Names are unquoted, so PostgreSQL folds them to lower case where Oracle
-- folds them to upper case: the same unquoted SQL text works on both.
--
-- Type mapping, Oracle -> stand-in:
--   NUMBER(p)      -> numeric(p). Same precision, same rounding of
--                     fractions and the same overflow error class as Oracle
--                     (ORA-01438 / SQLSTATE 22003), and the catalogue reports
--                     the NOMIS precision. Keys fit int64: Go code scans them
--                     into int64 on both dialects, as it must with godror's
--                     decimal NUMBERs anyway. bigint would be a little faster
--                     but would accept 11-digit ids that NOMIS refuses.
--   VARCHAR2(n CHAR) -> varchar(n) (characters, as NOMIS declares them).
--                     COMMENT_TEXT is VARCHAR2(4000 CHAR) but Oracle caps any
--                     VARCHAR2 at 4000 bytes: a check keeps it to 4000 bytes
--                     of UTF-8 (Oracle: ORA-12899; here: check violation 23514).
--   DATE           -> timestamp(0): Oracle DATE has a time part to the second.
--                     (Oracle truncates fractional seconds where PostgreSQL
--                     rounds them: defaults use date_trunc('second', ...).)
--   TIMESTAMP(9)   -> timestamp (microseconds, PostgreSQL's finest).
-- Times are Europe/London wall clock without zone, as NOMIS keeps them;
-- SYSDATE/SYSTIMESTAMP become now()/clock_timestamp() AT TIME ZONE
-- 'Europe/London', whatever the session's TimeZone.
--
-- Idempotent: every statement may run again on a database that has the
-- tables.

CREATE SCHEMA IF NOT EXISTS oms_owner;

CREATE TABLE IF NOT EXISTS oms_owner.offenders (
    offender_id                   numeric(10)  NOT NULL CONSTRAINT offenders_pk PRIMARY KEY,
    -- The prison number (e.g. A1234BC); alias rows of a person share it.
    offender_id_display           varchar(10),
    root_offender_id              numeric(10),
    create_datetime               timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'Europe/London'),
    create_user_id                varchar(32)  NOT NULL DEFAULT current_user,
    modify_datetime               timestamp,
    modify_user_id                varchar(32),
    audit_timestamp               timestamp,
    audit_user_id                 varchar(32),
    audit_module_name             varchar(65),
    audit_client_user_id          varchar(64),
    audit_client_ip_address       varchar(39),
    audit_client_workstation_name varchar(64),
    audit_additional_info         varchar(256)
);

CREATE INDEX IF NOT EXISTS offenders_ni1 ON oms_owner.offenders (offender_id_display);
CREATE INDEX IF NOT EXISTS offenders_ni2 ON oms_owner.offenders (root_offender_id);

-- One stay in custody. BOOKING_SEQ 1 is the current booking; older ones count
-- up.
CREATE TABLE IF NOT EXISTS oms_owner.offender_bookings (
    offender_book_id              numeric(10)  NOT NULL CONSTRAINT offender_bookings_pk PRIMARY KEY,
    booking_begin_date            timestamp(0) NOT NULL,
    offender_id                   numeric(10)  NOT NULL
        CONSTRAINT off_bkg_off_fk1 REFERENCES oms_owner.offenders (offender_id),
    agy_loc_id                    varchar(6),
    active_flag                   varchar(1)   NOT NULL DEFAULT 'N',
    root_offender_id              numeric(10),
    booking_seq                   numeric(6)   NOT NULL,
    create_datetime               timestamp    NOT NULL DEFAULT (now() AT TIME ZONE 'Europe/London'),
    create_user_id                varchar(32)  NOT NULL DEFAULT current_user,
    modify_datetime               timestamp,
    modify_user_id                varchar(32),
    audit_timestamp               timestamp,
    audit_user_id                 varchar(32),
    audit_module_name             varchar(65),
    audit_client_user_id          varchar(64),
    audit_client_ip_address       varchar(39),
    audit_client_workstation_name varchar(64),
    audit_additional_info         varchar(256)
);

CREATE INDEX IF NOT EXISTS offender_bookings_ni1 ON oms_owner.offender_bookings (offender_id);
CREATE INDEX IF NOT EXISTS offender_bookings_ni2 ON oms_owner.offender_bookings (root_offender_id);

-- Alerts hang off a booking. ALERT_SEQ is max+1 within the booking.
-- ALERT_TYPE is the parent of ALERT_CODE in REFERENCE_CODES; as in NOMIS,
-- nothing enforces it (no foreign key to REFERENCE_CODES).
CREATE TABLE IF NOT EXISTS oms_owner.offender_alerts (
    alert_date                    timestamp(0)  NOT NULL DEFAULT date_trunc('second', now() AT TIME ZONE 'Europe/London'),
    offender_book_id              numeric(10)   NOT NULL
        CONSTRAINT off_alert_off_bkg_f1 REFERENCES oms_owner.offender_bookings (offender_book_id),
    root_offender_id              numeric(10),
    alert_seq                     numeric(6)    NOT NULL,
    alert_type                    varchar(12)   NOT NULL,
    alert_code                    varchar(12)   NOT NULL,
    authorize_person_text         varchar(40),
    create_date                   timestamp(0),
    alert_status                  varchar(12)   NOT NULL,
    verified_flag                 varchar(1)    NOT NULL DEFAULT 'N',
    expiry_date                   timestamp(0),
    comment_text                  varchar(4000)
        CONSTRAINT offender_alerts_comment_bytes CHECK (octet_length(comment_text) <= 4000),
    caseload_id                   varchar(6),
    modify_user_id                varchar(32),
    modify_datetime               timestamp,
    caseload_type                 varchar(12),
    create_datetime               timestamp     NOT NULL DEFAULT (now() AT TIME ZONE 'Europe/London'),
    create_user_id                varchar(32)   NOT NULL DEFAULT current_user,
    audit_timestamp               timestamp,
    audit_user_id                 varchar(32),
    audit_module_name             varchar(65),
    audit_client_user_id          varchar(64),
    audit_client_ip_address       varchar(39),
    audit_client_workstation_name varchar(64),
    audit_additional_info         varchar(256),
    CONSTRAINT alerts_pk PRIMARY KEY (offender_book_id, alert_seq)
);

-- NOMIS reference data. Alert types are domain ALERT; alert codes are domain
-- ALERT_CODE with PARENT_DOMAIN 'ALERT' and PARENT_CODE = the type. (The real
-- table also carries the AUDIT_* columns; the stand-in does not need them.)
CREATE TABLE IF NOT EXISTS oms_owner.reference_codes (
    domain           varchar(12) NOT NULL,
    code             varchar(12) NOT NULL,
    description      varchar(40) NOT NULL,
    list_seq         numeric(6),
    active_flag      varchar(1)  NOT NULL DEFAULT 'Y',
    system_data_flag varchar(1)  NOT NULL DEFAULT 'Y',
    modify_user_id   varchar(32),
    expired_date     timestamp(0),
    new_code         varchar(12),
    parent_code      varchar(12),
    parent_domain    varchar(12),
    create_datetime  timestamp   NOT NULL DEFAULT (now() AT TIME ZONE 'Europe/London'),
    create_user_id   varchar(32) NOT NULL DEFAULT current_user,
    modify_datetime  timestamp,
    CONSTRAINT reference_codes_pk PRIMARY KEY (domain, code)
);

-- NOMIS's audit triggers (OFFENDER_ALERTS_TA and friends: BEFORE INSERT OR
-- UPDATE, FOR EACH ROW) stamp every written row with who wrote it, read from
-- the session, never from the row. NOMIS reads its application context
-- 'NOMIS', which its sessions fill; the stand-in reads custom settings of the
-- session instead, one per context attribute, set by the writer with
--   SET [LOCAL] nomis.audit_module_name = 'DPS_SYNCHRONISATION'
-- or set_config('nomis.audit_module_name', ..., is_local):
--
--   stand-in setting                    Oracle
--   nomis.audit_module_name       (65)  SYS_CONTEXT('NOMIS','AUDIT_MODULE_NAME',65): the
--                                       session's module (SYS_CONTEXT('USERENV','MODULE'),
--                                       set by DBMS_APPLICATION_INFO.SET_MODULE)
--   nomis.audit_additional_info  (256)  SYS_CONTEXT('NOMIS','AUDIT_ADDITIONAL_INFO',256): the
--                                       session's client info / action
--                                       (USERENV CLIENT_INFO or ACTION), e.g.
--                                       OMKCOPY.COPY_BOOKING_DATA
--   nomis.audit_user_id           (32)  SYS_CONTEXT('NOMIS','AUDIT_USER_ID',30); the
--                                       stand-in falls back to the session user (USER)
--   nomis.audit_client_user_id    (64)  SYS_CONTEXT('NOMIS','AUDIT_CLIENT_USER_ID',64)
--   nomis.audit_client_ip_address (39)  SYS_CONTEXT('NOMIS','AUDIT_CLIENT_IP_ADDRESS',39);
--                                       falls back to the client's address
--   nomis.audit_client_workstation_name (64)
--                                       SYS_CONTEXT('NOMIS','AUDIT_CLIENT_WORKSTATION_NAME',64);
--                                       falls back to application_name
--
-- Which USERENV attribute feeds which context attribute in a real NOMIS is
-- for the Oracle dialect to confirm; the stand-in only needs the contract:
-- the values come from the writing session. Values are cut to the column's
-- length, as SYS_CONTEXT's length argument does; an unset or empty setting
-- gives NULL, as an unset context attribute does. alertsync's journal
-- trigger (nomis/migrations) reads the same settings. Unlike NOMIS, the
-- stand-in leaves MODIFY_DATETIME and MODIFY_USER_ID to the writer and keeps
-- no OMS_DELETED_ROWS.
CREATE OR REPLACE FUNCTION oms_owner.nomis_audit() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.audit_timestamp := clock_timestamp() AT TIME ZONE 'Europe/London';
    NEW.audit_user_id := left(coalesce(nullif(current_setting('nomis.audit_user_id', true), ''),
                                       session_user::text), 32);
    NEW.audit_module_name := left(nullif(current_setting('nomis.audit_module_name', true), ''), 65);
    NEW.audit_client_user_id := left(nullif(current_setting('nomis.audit_client_user_id', true), ''), 64);
    NEW.audit_client_ip_address := left(coalesce(nullif(current_setting('nomis.audit_client_ip_address', true), ''),
                                                 host(inet_client_addr())), 39);
    NEW.audit_client_workstation_name := left(coalesce(nullif(current_setting('nomis.audit_client_workstation_name', true), ''),
                                                       nullif(current_setting('application_name'), '')), 64);
    NEW.audit_additional_info := left(nullif(current_setting('nomis.audit_additional_info', true), ''), 256);
    RETURN NEW;
END
$$;

CREATE OR REPLACE TRIGGER offenders_ta
    BEFORE INSERT OR UPDATE ON oms_owner.offenders
    FOR EACH ROW EXECUTE FUNCTION oms_owner.nomis_audit();

CREATE OR REPLACE TRIGGER offender_bookings_ta
    BEFORE INSERT OR UPDATE ON oms_owner.offender_bookings
    FOR EACH ROW EXECUTE FUNCTION oms_owner.nomis_audit();

CREATE OR REPLACE TRIGGER offender_alerts_ta
    BEFORE INSERT OR UPDATE ON oms_owner.offender_alerts
    FOR EACH ROW EXECUTE FUNCTION oms_owner.nomis_audit();
