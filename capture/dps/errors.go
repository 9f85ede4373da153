package dps

import "errors"

// Errors a human must act on; the capture exits non-zero with them.
var (
	// ErrSlotLost: the replication slot was dropped or invalidated behind the
	// capture's back after its snapshot; changes may be lost. Run with
	// --resnapshot.
	ErrSlotLost = errors.New("replication slot lost")
	// ErrReplicaIdentity: a captured table that must have REPLICA IDENTITY FULL has not.
	ErrReplicaIdentity = errors.New("replica identity is not FULL")
	// ErrNotPermitted: the publication or slot is missing and may not be created.
	ErrNotPermitted = errors.New("missing and not permitted to create")
	// ErrLocked: another capture holds the slot's lock.
	ErrLocked = errors.New("another capture holds the lock")
	// ErrNoSuchTable: a configured table does not exist.
	ErrNoSuchTable = errors.New("no such table")
	// ErrNoPrimaryKey: a configured table has no primary key to key its topic by.
	ErrNoPrimaryKey = errors.New("no primary key")
	// ErrSchemaDrift: the replication stream and the catalog disagree on a table's columns.
	ErrSchemaDrift = errors.New("replication relation and catalog disagree")
	// ErrNullInNotNull: a NOT NULL column arrived as NULL.
	ErrNullInNotNull = errors.New("null in a not-null column")
	// ErrKafkaRefused: Kafka refused a record for good (not a retriable outage).
	ErrKafkaRefused = errors.New("kafka refused a record")

	// errRegistry marks a schema-registry failure, retried like an outage.
	errRegistry = errors.New("schema registry unavailable")
)
