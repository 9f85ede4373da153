-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- The NOMIS-side alert mapping, counterpart of
-- deploy/nomis/migrations/0003_alert_mapping.sql (read the rules there).
-- Differences: DPS_ALERT_ID is VARCHAR2(36) holding the canonical lower-case
-- UUID text (binds as a Go string with every driver); bigint is NUMBER(19);
-- timestamptz is TIMESTAMP WITH TIME ZONE with SYSTIMESTAMP defaults. The
-- NOMIS positions are (commit SCN, journal id) on Oracle. Idempotent
-- (ORA-00955 ignored) because Oracle DDL is not transactional.
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_ALERT_MAPPING (
            DPS_ALERT_ID     VARCHAR2(36)       NOT NULL
                CONSTRAINT ALERTSYNC_ALERT_MAPPING_PK PRIMARY KEY,
            OFFENDER_BOOK_ID NUMBER(10)         NOT NULL,
            ALERT_SEQ        NUMBER(6)          NOT NULL,
            OFFENDER_NO      VARCHAR2(10 CHAR)  NOT NULL,
            MAPPING_TYPE     VARCHAR2(20)       NOT NULL
                CONSTRAINT ALERTSYNC_ALERT_MAP_TYPE_CK
                CHECK (MAPPING_TYPE IN ('MIGRATED', 'DPS_CREATED', 'NOMIS_CREATED')),
            DPS_COMMIT_POS   NUMBER(19),
            DPS_CHANGE_POS   NUMBER(19),
            NOMIS_COMMIT_POS NUMBER(19),
            NOMIS_CHANGE_POS NUMBER(19),
            DELETED_AT       TIMESTAMP WITH TIME ZONE,
            CREATED_AT       TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            UPDATED_AT       TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            CONSTRAINT ALERTSYNC_ALERT_MAP_NOMIS_UK UNIQUE (OFFENDER_BOOK_ID, ALERT_SEQ),
            CONSTRAINT ALERTSYNC_ALERT_MAP_ID_CK CHECK (LENGTH(DPS_ALERT_ID) = 36),
            CONSTRAINT ALERTSYNC_ALERT_MAP_DPS_POS_CK CHECK (
                (DPS_COMMIT_POS IS NULL AND DPS_CHANGE_POS IS NULL)
                OR (DPS_COMMIT_POS IS NOT NULL AND DPS_CHANGE_POS IS NOT NULL)),
            CONSTRAINT ALERTSYNC_ALERT_MAP_NOM_POS_CK CHECK (
                (NOMIS_COMMIT_POS IS NULL AND NOMIS_CHANGE_POS IS NULL)
                OR (NOMIS_COMMIT_POS IS NOT NULL AND NOMIS_CHANGE_POS IS NOT NULL))
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

-- Prisoner-level resyncs find a prisoner's mappings by prison number.
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE INDEX ALERTSYNC_ALERT_MAP_OFF_NO_IX ON ALERTSYNC_ALERT_MAPPING (OFFENDER_NO)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
