// Package encode turns the transformer's commands (rules.Command) into the
// Avro records of the command topics, alertsync.commands.dps and
// alertsync.commands.nomis (key schemas.TypeCommandKey, value
// schemas.TypeCommand; both topics carry the same schemas). It is pure: no
// I/O, no registry, no clock.
//
// Two encoders, one format:
//
//   - Native returns goavro's native form (map[string]any, unions through
//     the schemas helpers, dates as int32 days, timestamps as int64
//     microseconds, enums as the String() of Kind, Side and Status). It is
//     the reference, and the fallback for callers that encode with
//     schemas.Encoder.
//   - AppendKey and AppendValue write the Avro binary body directly, for the
//     stream loop's hot path: the caller prepends the Confluent header
//     (avrobin.WireHeader of the id schemas.Codec.Bind registered) and
//     produces the record to the topic of Command.Target, which the record
//     itself does not hold.
//
// Contract:
//
//   - For every command AppendValue accepts, its bytes equal goavro's
//     BinaryFromNative(Native(c)) under the current schema, and
//     AppendKey's equal goavro's for the key (the differential and fuzz
//     tests check this; TestSchemaFields fails when the .avsc files gain a
//     field the writers do not know).
//   - AppendValue returns an error, never panics, for a value the schema
//     cannot hold: an *Error naming the field (never its value) wrapping
//     ErrOutOfRange (a timestamp whose microseconds since the epoch do not
//     fit an int64) or ErrUnknownSymbol (a Kind, Side or Status whose
//     String() is not a symbol of the schema's enum); ErrNilCommand for a
//     nil command. On error dst is returned unchanged. Native does not
//     validate: out-of-range timestamps wrap there.
//   - Everything the schema can hold is encoded as it is, without judging
//     the command: the UNKNOWN symbols (String() of a zero or unknown
//     Kind, Side or Status), zero positions and times, empty strings, an
//     UPSERT without After. uuid fields and strings are written as given,
//     as goavro does: neither checks uuid syntax or UTF-8 validity.
//   - Dates (rules.Date, int32 days) always fit the date logical type.
//     Timestamps lose their sub-microsecond digits, as schemas.Timestamp
//     drops them.
//   - The alerts array is written in blocks of at most 65536 items, as
//     goavro does with the schemas package's MaxBlockCount, so that every
//     reader of the repository accepts it.
//   - AppendKey and AppendValue allocate nothing beyond growing dst; both
//     are safe for concurrent use on distinct dst.
package encode
