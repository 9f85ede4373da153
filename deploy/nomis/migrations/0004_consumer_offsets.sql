-- Kafka offsets consumed by apply nomis, stored in the NOMIS database in the
-- same transaction as the writes they cover (the fenced offset store), as
-- alertsync.consumer_offsets does in the DPS database.
--
-- Fencing: when a consumer is assigned a partition it claims the row with its
-- token (the group generation, or any number that grows with each new owner):
--   UPDATE ... SET fence_epoch = $mine, fence_owner = $me
--    WHERE <key> AND fence_epoch < $mine      (or INSERT when missing)
-- then reads next_offset. Every apply transaction ends with
--   UPDATE ... SET next_offset = $n, updated_at = now()
--    WHERE <key> AND fence_epoch = $mine
-- and rolls back when no row was updated: a newer owner has claimed the
-- partition, so a zombie left behind by a rebalance can never commit.
--
-- Oracle differences: integer NUMBER(10), bigint NUMBER(19), timestamptz
-- TIMESTAMP WITH TIME ZONE.
CREATE TABLE alertsync.alertsync_consumer_offsets (
    consumer_group  varchar(255) NOT NULL,
    topic           varchar(255) NOT NULL,
    kafka_partition integer      NOT NULL
        CONSTRAINT alertsync_consumer_offsets_partition_check CHECK (kafka_partition >= 0),
    -- The offset of the next record to consume (last applied + 1).
    next_offset     bigint       NOT NULL
        CONSTRAINT alertsync_consumer_offsets_offset_check CHECK (next_offset >= 0),
    fence_epoch     bigint       NOT NULL
        CONSTRAINT alertsync_consumer_offsets_epoch_check CHECK (fence_epoch >= 0),
    -- Who holds the fence (member or instance id), for operators only.
    fence_owner     varchar(255),
    updated_at      timestamptz  NOT NULL DEFAULT now(),
    CONSTRAINT alertsync_consumer_offsets_pk PRIMARY KEY (consumer_group, topic, kafka_partition)
);
