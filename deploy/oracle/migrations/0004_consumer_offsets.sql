-- ORACLE. Never run against a live Oracle in this project's CI: see
-- deploy/oracle/README.md.
--
-- Kafka offsets consumed by apply nomis with their fencing epoch, counterpart
-- of deploy/nomis/migrations/0004_consumer_offsets.sql (the claim and commit
-- statements are described there; on Oracle the commit's UPDATE ... WHERE
-- FENCE_EPOCH = :mine must report one row, else the transaction rolls back).
-- Differences: integer NUMBER(10), bigint NUMBER(19), timestamptz TIMESTAMP
-- WITH TIME ZONE. Idempotent (ORA-00955 ignored).
BEGIN
    EXECUTE IMMEDIATE q'[
        CREATE TABLE ALERTSYNC_CONSUMER_OFFSETS (
            CONSUMER_GROUP  VARCHAR2(255 CHAR) NOT NULL,
            TOPIC           VARCHAR2(255 CHAR) NOT NULL,
            KAFKA_PARTITION NUMBER(10)         NOT NULL
                CONSTRAINT ALERTSYNC_OFFSETS_PART_CK CHECK (KAFKA_PARTITION >= 0),
            NEXT_OFFSET     NUMBER(19)         NOT NULL
                CONSTRAINT ALERTSYNC_OFFSETS_OFFSET_CK CHECK (NEXT_OFFSET >= 0),
            FENCE_EPOCH     NUMBER(19)         NOT NULL
                CONSTRAINT ALERTSYNC_OFFSETS_EPOCH_CK CHECK (FENCE_EPOCH >= 0),
            FENCE_OWNER     VARCHAR2(255 CHAR),
            UPDATED_AT      TIMESTAMP WITH TIME ZONE DEFAULT SYSTIMESTAMP NOT NULL,
            CONSTRAINT ALERTSYNC_CONSUMER_OFFSETS_PK PRIMARY KEY (CONSUMER_GROUP, TOPIC, KAFKA_PARTITION)
        )]';
EXCEPTION
    WHEN OTHERS THEN
        IF SQLCODE != -955 THEN
            RAISE;
        END IF;
END;
/
