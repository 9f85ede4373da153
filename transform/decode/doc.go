// Package decode turns the decoded Avro records of the transformer's input
// topics into the input types of package transform/rules. It is pure: no
// I/O, no registry, no clock.
//
// The stream loop decodes a record's key and value with schemas.Codec
// (goavro's native form: records as map[string]any, nullable unions as
// map[branch]value or nil, timestamp-micros and date as time.Time, uuid as
// string, enum as string) and passes both to the function of the topic:
//
//	nomis.oms_owner.offender_alerts  NOMISAlert    → rules.NOMISAlertChange
//	nomis.alertsync.prisoner_alerts  NOMISSnapshot → rules.NOMISSnapshot
//	dps.public.alert                 DPSAlert      → rules.DPSAlertChange
//
// Contract:
//
//   - A tombstone (nil value) returns an error matching ErrTombstone; the
//     loop skips it (it is neither mapped nor sent to the DLQ).
//   - A record without the expected shape (a required field missing or of
//     another type, a key that does not match the value) returns an *Error:
//     the loop sends the original record to alertsync.dlq with Stage
//     (rules.StageTransform), ErrorKind ("decode") and Error(). The error
//     names the field path (e.g. "after.alert_date") and what is wrong, never
//     a value of the record, so it never quotes alert text.
//   - Everything else is returned as it is, for the rules to judge: an op
//     the rules do not map (t, or an unknown one-letter op), a missing
//     before or after image, an unknown code or status, a zero date. Fields
//     absent from the record (written with an older schema, before the field
//     existed) read as null when nullable; source.sync absent reads as false.
//   - DPSAlertChange.User is left nil: the alert record carries no user
//     (the loop fills it from dps.public.audit_event when it knows it).
//
// Timestamps come back in UTC; dates as rules.Date. Positions, booking ids
// and sequences are copied as they are.
//
// FastNOMISAlert, FastNOMISSnapshot and FastDPSAlert read the same records
// straight from their Avro binary bodies (the bytes after the 5-byte wire
// header), with the layout of the current committed schemas: the loop calls
// them only for a record whose key and value schema ids are the ids of those
// schemas, and the generic path for any other version. They return exactly
// what the generic path returns (differential tests and fuzzing against
// goavro), with one deliberate difference: an over-long varint, which goavro
// silently wraps, is an *Error. Only a nil value is a tombstone; an empty
// non-nil value is malformed. TestFastLayout fails when a schema changes
// without the decoders.
//
// FastCommand does the same for the applies' input, alertsync.commands.*
// (the records transform/encode writes): it returns what apply.DecodeCommand
// returns for the goavro natives of the same record, and its refusals wrap
// ErrMalformedCommand (which package apply re-exports) with the same texts.
package decode
