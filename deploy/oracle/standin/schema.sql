-- ORACLE. STAND-IN OF THE REAL NOMIS TABLES. NOT THE REAL NOMIS SCHEMA.
-- Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- For development environments with an Oracle container (e.g.
-- gvenzl/oracle-free): the subset of NOMIS (schema OMS_OWNER) that alertsync
-- reads and writes -- OFFENDERS, OFFENDER_BOOKINGS, OFFENDER_ALERTS and
-- REFERENCE_CODES -- with the same columns as the PostgreSQL stand-in
-- (deploy/nomis/schema.sql; a test keeps them equal) in NOMIS's Oracle
-- types, and NOMIS-like audit triggers. NEVER apply this to a real NOMIS:
-- alertsync never creates or changes NOMIS's tables; its own objects come
-- from deploy/oracle/migrations.
--
-- Run as a DBA (SYSTEM in the container) with SQL*Plus or SQLcl:
--   sqlplus system/...@//localhost:1521/FREEPDB1 @schema.sql
-- then seed.sql. The password is the SQL*Plus substitution variable
-- oms_owner_password (prompted for).
-- Re-runnable: existing objects are kept (ORA-00955 "name already used",
-- ORA-01920 "user name conflicts" ignored; code is CREATE OR REPLACE).
--
-- Session context. NOMIS's audit triggers read its application context
-- NOMIS; the stand-in creates that context, set only through the package
-- OMS_OWNER.NOMIS_CONTEXT:
--   BEGIN OMS_OWNER.NOMIS_CONTEXT.SET_CONTEXT('AUDIT_MODULE_NAME', 'DPS_SYNCHRONISATION'); END;
-- Attribute and fallback when unset, the same as the journal triggers
-- (deploy/oracle/migrations/0002) and the PostgreSQL stand-in's settings:
--   AUDIT_MODULE_NAME (65)       else USERENV MODULE   nomis.audit_module_name
--   AUDIT_ADDITIONAL_INFO (256)  else USERENV CLIENT_INFO
--                                                      nomis.audit_additional_info
--   AUDIT_USER_ID (32)           else SESSION_USER     nomis.audit_user_id
--   AUDIT_CLIENT_USER_ID (64)    else USERENV OS_USER  nomis.audit_client_user_id
--   AUDIT_CLIENT_IP_ADDRESS (39) else USERENV IP_ADDRESS
--                                                      nomis.audit_client_ip_address
--   AUDIT_CLIENT_WORKSTATION_NAME (64) else USERENV TERMINAL
--                                                      nomis.audit_client_workstation_name
-- The package name and its SET_CONTEXT signature are the stand-in's own; the
-- real NOMIS package that fills the context is not reproduced here.
--
-- Types: NUMBER(p), VARCHAR2(n CHAR) (COMMENT_TEXT is capped at 4000 bytes
-- by Oracle itself), DATE, TIMESTAMP(9); times are Europe/London wall clock
-- without zone, as NOMIS keeps them.

BEGIN
    EXECUTE IMMEDIATE 'CREATE USER OMS_OWNER IDENTIFIED BY "&&oms_owner_password" DEFAULT TABLESPACE USERS QUOTA UNLIMITED ON USERS';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -1920 THEN
            RAISE;
        END IF;
END;
/

-- What a NOMIS schema owner has, and so what the Oracle migrations, run as
-- OMS_OWNER, rely on (plus DBMS_LOCK: deploy/oracle/install/migration_owner.sql).
GRANT CREATE SESSION, CREATE TABLE, CREATE SEQUENCE, CREATE TRIGGER, CREATE PROCEDURE TO OMS_OWNER;

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE TABLE OMS_OWNER.OFFENDERS (
    OFFENDER_ID                   NUMBER(10)        NOT NULL,
    OFFENDER_ID_DISPLAY           VARCHAR2(10 CHAR),
    ROOT_OFFENDER_ID              NUMBER(10),
    CREATE_DATETIME               TIMESTAMP(9)      DEFAULT CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9)) NOT NULL,
    CREATE_USER_ID                VARCHAR2(32 CHAR) DEFAULT USER NOT NULL,
    MODIFY_DATETIME               TIMESTAMP(9),
    MODIFY_USER_ID                VARCHAR2(32 CHAR),
    AUDIT_TIMESTAMP               TIMESTAMP(9),
    AUDIT_USER_ID                 VARCHAR2(32 CHAR),
    AUDIT_MODULE_NAME             VARCHAR2(65 CHAR),
    AUDIT_CLIENT_USER_ID          VARCHAR2(64 CHAR),
    AUDIT_CLIENT_IP_ADDRESS       VARCHAR2(39 CHAR),
    AUDIT_CLIENT_WORKSTATION_NAME VARCHAR2(64 CHAR),
    AUDIT_ADDITIONAL_INFO         VARCHAR2(256 CHAR),
    CONSTRAINT OFFENDERS_PK PRIMARY KEY (OFFENDER_ID)
)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE INDEX OMS_OWNER.OFFENDERS_NI1 ON OMS_OWNER.OFFENDERS (OFFENDER_ID_DISPLAY)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE INDEX OMS_OWNER.OFFENDERS_NI2 ON OMS_OWNER.OFFENDERS (ROOT_OFFENDER_ID)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE TABLE OMS_OWNER.OFFENDER_BOOKINGS (
    OFFENDER_BOOK_ID              NUMBER(10)        NOT NULL,
    BOOKING_BEGIN_DATE            DATE              NOT NULL,
    OFFENDER_ID                   NUMBER(10)        NOT NULL,
    AGY_LOC_ID                    VARCHAR2(6 CHAR),
    ACTIVE_FLAG                   VARCHAR2(1 CHAR)  DEFAULT 'N' NOT NULL,
    ROOT_OFFENDER_ID              NUMBER(10),
    BOOKING_SEQ                   NUMBER(6)         NOT NULL,
    CREATE_DATETIME               TIMESTAMP(9)      DEFAULT CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9)) NOT NULL,
    CREATE_USER_ID                VARCHAR2(32 CHAR) DEFAULT USER NOT NULL,
    MODIFY_DATETIME               TIMESTAMP(9),
    MODIFY_USER_ID                VARCHAR2(32 CHAR),
    AUDIT_TIMESTAMP               TIMESTAMP(9),
    AUDIT_USER_ID                 VARCHAR2(32 CHAR),
    AUDIT_MODULE_NAME             VARCHAR2(65 CHAR),
    AUDIT_CLIENT_USER_ID          VARCHAR2(64 CHAR),
    AUDIT_CLIENT_IP_ADDRESS       VARCHAR2(39 CHAR),
    AUDIT_CLIENT_WORKSTATION_NAME VARCHAR2(64 CHAR),
    AUDIT_ADDITIONAL_INFO         VARCHAR2(256 CHAR),
    CONSTRAINT OFFENDER_BOOKINGS_PK PRIMARY KEY (OFFENDER_BOOK_ID),
    CONSTRAINT OFF_BKG_OFF_FK1 FOREIGN KEY (OFFENDER_ID) REFERENCES OMS_OWNER.OFFENDERS (OFFENDER_ID)
)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE INDEX OMS_OWNER.OFFENDER_BOOKINGS_NI1 ON OMS_OWNER.OFFENDER_BOOKINGS (OFFENDER_ID)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE INDEX OMS_OWNER.OFFENDER_BOOKINGS_NI2 ON OMS_OWNER.OFFENDER_BOOKINGS (ROOT_OFFENDER_ID)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE TABLE OMS_OWNER.OFFENDER_ALERTS (
    ALERT_DATE                    DATE              DEFAULT CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS DATE) NOT NULL,
    OFFENDER_BOOK_ID              NUMBER(10)        NOT NULL,
    ROOT_OFFENDER_ID              NUMBER(10),
    ALERT_SEQ                     NUMBER(6)         NOT NULL,
    ALERT_TYPE                    VARCHAR2(12 CHAR) NOT NULL,
    ALERT_CODE                    VARCHAR2(12 CHAR) NOT NULL,
    AUTHORIZE_PERSON_TEXT         VARCHAR2(40 CHAR),
    CREATE_DATE                   DATE,
    ALERT_STATUS                  VARCHAR2(12 CHAR) NOT NULL,
    VERIFIED_FLAG                 VARCHAR2(1 CHAR)  DEFAULT 'N' NOT NULL,
    EXPIRY_DATE                   DATE,
    COMMENT_TEXT                  VARCHAR2(4000 CHAR),
    CASELOAD_ID                   VARCHAR2(6 CHAR),
    MODIFY_USER_ID                VARCHAR2(32 CHAR),
    MODIFY_DATETIME               TIMESTAMP(9),
    CASELOAD_TYPE                 VARCHAR2(12 CHAR),
    CREATE_DATETIME               TIMESTAMP(9)      DEFAULT CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9)) NOT NULL,
    CREATE_USER_ID                VARCHAR2(32 CHAR) DEFAULT USER NOT NULL,
    AUDIT_TIMESTAMP               TIMESTAMP(9),
    AUDIT_USER_ID                 VARCHAR2(32 CHAR),
    AUDIT_MODULE_NAME             VARCHAR2(65 CHAR),
    AUDIT_CLIENT_USER_ID          VARCHAR2(64 CHAR),
    AUDIT_CLIENT_IP_ADDRESS       VARCHAR2(39 CHAR),
    AUDIT_CLIENT_WORKSTATION_NAME VARCHAR2(64 CHAR),
    AUDIT_ADDITIONAL_INFO         VARCHAR2(256 CHAR),
    CONSTRAINT ALERTS_PK PRIMARY KEY (OFFENDER_BOOK_ID, ALERT_SEQ),
    CONSTRAINT OFF_ALERT_OFF_BKG_F1 FOREIGN KEY (OFFENDER_BOOK_ID) REFERENCES OMS_OWNER.OFFENDER_BOOKINGS (OFFENDER_BOOK_ID)
)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

BEGIN
    EXECUTE IMMEDIATE q'[
CREATE TABLE OMS_OWNER.REFERENCE_CODES (
    DOMAIN                        VARCHAR2(12 CHAR) NOT NULL,
    CODE                          VARCHAR2(12 CHAR) NOT NULL,
    DESCRIPTION                   VARCHAR2(40 CHAR) NOT NULL,
    LIST_SEQ                      NUMBER(6),
    ACTIVE_FLAG                   VARCHAR2(1 CHAR)  DEFAULT 'Y' NOT NULL,
    SYSTEM_DATA_FLAG              VARCHAR2(1 CHAR)  DEFAULT 'Y' NOT NULL,
    MODIFY_USER_ID                VARCHAR2(32 CHAR),
    EXPIRED_DATE                  DATE,
    NEW_CODE                      VARCHAR2(12 CHAR),
    PARENT_CODE                   VARCHAR2(12 CHAR),
    PARENT_DOMAIN                 VARCHAR2(12 CHAR),
    CREATE_DATETIME               TIMESTAMP(9)      DEFAULT CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9)) NOT NULL,
    CREATE_USER_ID                VARCHAR2(32 CHAR) DEFAULT USER NOT NULL,
    MODIFY_DATETIME               TIMESTAMP(9),
    CONSTRAINT REFERENCE_CODES_PK PRIMARY KEY (DOMAIN, CODE)
)]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/

CREATE OR REPLACE PACKAGE OMS_OWNER.NOMIS_CONTEXT AS
    -- SET_CONTEXT sets one attribute of the session's NOMIS context (NULL
    -- clears it). Stand-in only.
    PROCEDURE SET_CONTEXT(p_attribute IN VARCHAR2, p_value IN VARCHAR2);
END NOMIS_CONTEXT;
/

CREATE OR REPLACE PACKAGE BODY OMS_OWNER.NOMIS_CONTEXT AS
    PROCEDURE SET_CONTEXT(p_attribute IN VARCHAR2, p_value IN VARCHAR2) IS
    BEGIN
        DBMS_SESSION.SET_CONTEXT('NOMIS', p_attribute, p_value);
    END SET_CONTEXT;
END NOMIS_CONTEXT;
/

CREATE OR REPLACE CONTEXT NOMIS USING OMS_OWNER.NOMIS_CONTEXT;

-- Stand-in only: any session may set its own audit context.
GRANT EXECUTE ON OMS_OWNER.NOMIS_CONTEXT TO PUBLIC;

-- NOMIS-like audit trigger: stamps the written row with who wrote it, read
-- from the session context, never from the row.
CREATE OR REPLACE TRIGGER OMS_OWNER.OFFENDERS_TA
    BEFORE INSERT OR UPDATE ON OMS_OWNER.OFFENDERS
    FOR EACH ROW
BEGIN
    :NEW.AUDIT_TIMESTAMP := CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9));
    :NEW.AUDIT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                                          SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32);
    :NEW.AUDIT_MODULE_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                                              SYS_CONTEXT('USERENV', 'MODULE')), 1, 65);
    :NEW.AUDIT_CLIENT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_USER_ID', 64),
                                                 SYS_CONTEXT('USERENV', 'OS_USER')), 1, 64);
    :NEW.AUDIT_CLIENT_IP_ADDRESS := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_IP_ADDRESS', 39),
                                                    SYS_CONTEXT('USERENV', 'IP_ADDRESS')), 1, 39);
    :NEW.AUDIT_CLIENT_WORKSTATION_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_WORKSTATION_NAME', 64),
                                                          SYS_CONTEXT('USERENV', 'TERMINAL')), 1, 64);
    :NEW.AUDIT_ADDITIONAL_INFO := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                                                  SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256);
END;
/

-- NOMIS-like audit trigger: stamps the written row with who wrote it, read
-- from the session context, never from the row.
CREATE OR REPLACE TRIGGER OMS_OWNER.OFFENDER_BOOKINGS_TA
    BEFORE INSERT OR UPDATE ON OMS_OWNER.OFFENDER_BOOKINGS
    FOR EACH ROW
BEGIN
    :NEW.AUDIT_TIMESTAMP := CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9));
    :NEW.AUDIT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                                          SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32);
    :NEW.AUDIT_MODULE_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                                              SYS_CONTEXT('USERENV', 'MODULE')), 1, 65);
    :NEW.AUDIT_CLIENT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_USER_ID', 64),
                                                 SYS_CONTEXT('USERENV', 'OS_USER')), 1, 64);
    :NEW.AUDIT_CLIENT_IP_ADDRESS := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_IP_ADDRESS', 39),
                                                    SYS_CONTEXT('USERENV', 'IP_ADDRESS')), 1, 39);
    :NEW.AUDIT_CLIENT_WORKSTATION_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_WORKSTATION_NAME', 64),
                                                          SYS_CONTEXT('USERENV', 'TERMINAL')), 1, 64);
    :NEW.AUDIT_ADDITIONAL_INFO := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                                                  SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256);
END;
/

-- NOMIS-like audit trigger: stamps the written row with who wrote it, read
-- from the session context, never from the row.
CREATE OR REPLACE TRIGGER OMS_OWNER.OFFENDER_ALERTS_TA
    BEFORE INSERT OR UPDATE ON OMS_OWNER.OFFENDER_ALERTS
    FOR EACH ROW
BEGIN
    :NEW.AUDIT_TIMESTAMP := CAST(SYSTIMESTAMP AT TIME ZONE 'Europe/London' AS TIMESTAMP(9));
    :NEW.AUDIT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_USER_ID', 32),
                                          SYS_CONTEXT('USERENV', 'SESSION_USER')), 1, 32);
    :NEW.AUDIT_MODULE_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_MODULE_NAME', 65),
                                              SYS_CONTEXT('USERENV', 'MODULE')), 1, 65);
    :NEW.AUDIT_CLIENT_USER_ID := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_USER_ID', 64),
                                                 SYS_CONTEXT('USERENV', 'OS_USER')), 1, 64);
    :NEW.AUDIT_CLIENT_IP_ADDRESS := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_IP_ADDRESS', 39),
                                                    SYS_CONTEXT('USERENV', 'IP_ADDRESS')), 1, 39);
    :NEW.AUDIT_CLIENT_WORKSTATION_NAME := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_CLIENT_WORKSTATION_NAME', 64),
                                                          SYS_CONTEXT('USERENV', 'TERMINAL')), 1, 64);
    :NEW.AUDIT_ADDITIONAL_INFO := SUBSTR(COALESCE(SYS_CONTEXT('NOMIS', 'AUDIT_ADDITIONAL_INFO', 256),
                                                  SYS_CONTEXT('USERENV', 'CLIENT_INFO')), 1, 256);
END;
/
