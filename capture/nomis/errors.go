package nomis

import (
	"errors"
	"fmt"
)

// Errors a human must act on; the capture exits non-zero with them.
var (
	// ErrLocked: another capture holds the journal's lock.
	ErrLocked = errors.New("another capture nomis holds the journal's lock")
	// ErrNoJournal: the sync-owned journal (alertsync migrate nomis) is
	// missing and capture.migrate is false.
	ErrNoJournal = errors.New("the alertsync journal is missing")
	// ErrNoNOMISTables: the NOMIS tables the journal triggers go on do not
	// exist (on the stand-in: deploy/nomis/schema.sql was not applied).
	ErrNoNOMISTables = errors.New("the NOMIS tables are missing")
	// ErrCommitOrder: the database cannot tell the journal's commit order
	// (stand-in: track_commit_timestamp is off).
	ErrCommitOrder = errors.New("the database does not record commit order")
	// ErrKafkaRefused: Kafka refused a record for good (not a retriable
	// outage). Nothing of the batch was deleted from the journal.
	ErrKafkaRefused = errors.New("kafka refused a record")
	// ErrDialect: nomis.dialect names a dialect this build does not have.
	ErrDialect = errors.New("dialect not available")

	// errRegistry marks a schema-registry failure, retried like an outage.
	errRegistry = errors.New("schema registry unavailable")
)

// Kinds of RowError: the error_kind of the DLQ entry and the kind label of
// the dlq_total metric.
const (
	KindUnknownTable = "unknown_table" // table_name is not a captured table
	KindOperation    = "bad_operation" // operation is not I, U or D, or an image it needs is missing
	KindMalformed    = "malformed_row" // an image is not a JSON object
	KindBadValue     = "bad_value"     // a column value does not fit the column's type
	KindMissingValue = "missing_value" // a NOT NULL or key column is null or absent
	KindEncode       = "encode"        // the record does not fit its Avro schema
)

// RowError is why a journal row cannot be turned into a record. Its text
// names the table, column and a fixed reason, never a value: alert comments
// and names are personal data.
type RowError struct {
	// Kind is one of the Kind* constants.
	Kind string
	// Image is "old_row" or "new_row" when the error is in one of them.
	Image string
	// Column is the column at fault, if any.
	Column string
	// Reason is a fixed description of what is wrong.
	Reason string
}

// Error returns "<image> column <column>: <reason>" with the parts known.
func (e *RowError) Error() string {
	msg := e.Reason
	if e.Column != "" {
		msg = fmt.Sprintf("column %s: %s", e.Column, msg)
	}
	if e.Image != "" {
		msg = e.Image + " " + msg
	}
	return msg
}
