// Package schemas holds the Avro schemas of every alertsync topic and the
// codec that writes and reads them in the Confluent wire format through a
// schema registry.
//
// # Schemas
//
// The .avsc files under avro/ are embedded. Each file defines one named type
// (records may nest others) under the alertsync namespace; a file uses a type
// of another file by its full name, e.g. "alertsync.Source", so that a shared
// type is written once. At load time the files are composed into one
// resolved, self-contained schema per subject: each named type is defined at
// its first use and referenced by full name after that. [Topics],
// [LookupTopic] and [LookupSubject] expose the table topic → key and value
// subject (TopicNameStrategy: "<topic>-key", "<topic>-value"), the resolved
// schema text and the compatibility level:
//
//   - change topics (dps.public.alert, …): Debezium-compatible envelopes
//     {before, after, source, op, ts_ms} keyed by the primary key; one shared
//     alertsync.Source record; BACKWARD.
//   - alertsync.commands.dps and alertsync.commands.nomis: one Command
//     schema keyed by prison number; FULL.
//   - alertsync.dlq and alertsync.outcomes: FULL too, not just BACKWARD:
//     their writers (every stage, each apply) and readers (dlq redrive,
//     reconcile, operators' tools) are separate processes upgraded in any
//     order, and DLQ records are redriven long after they were written.
//
// Under FULL every field added or removed needs a default and every enum
// has the default symbol UNKNOWN (never written; what an older reader sees
// for a symbol added later).
//
// Released schemas are frozen in history/<subject>/v<N>.avsc. TestSchemaHistory
// checks, with hamba/avro's compatibility checker, each frozen version
// against the one before and the current schema against the newest, in the
// subject's level. To change a schema: edit the .avsc file, run the tests,
// and when the change is compatible freeze it with
//
//	go test ./schemas -run TestSchemaHistory -args -freeze
//
// and commit the new version file. A frozen version never changes.
//
// # Codec
//
// [New] wraps a registry client (*sr.Client). At start, [Codec.Bind] is
// called once per topic: it sets each subject's compatibility level, registers
// the schema (or finds it registered) and returns a [TopicCodec] whose
// [Encoder]s write magic byte 0, the 4-byte big-endian schema id and the Avro
// body, appending to the caller's buffer without locks. [Codec.Decode] reads
// the id, looks it up in a lock-free cache, fetches an unknown id from the
// registry once (concurrent callers share the fetch), compiles it and caches
// it for the codec's life; ids the codec registered itself are never
// fetched. A nil or empty payload (a tombstone) decodes to nil.
//
// Values are in goavro's native form: records are map[string]any, a
// non-null union value is wrapped as map[string]any{branch: value} (see
// [Union], the Opt* helpers and the Branch* names), enums are strings, dates
// and timestamps are encoded from int32 days and int64 microseconds ([Date],
// [Timestamp], [LocalTimestamp]) and decoded as time.Time in UTC, uuids are
// strings. Decoding follows the writer's schema: a field added after a record
// was written is absent from its map, so readers use [Get] and [GetOpt],
// which report absence. Decoded bytes alias the payload.
//
// Errors are typed. A payload that can never decode gives a *[DecodeError]
// wrapping [ErrTruncated], [ErrUnknownMagic], [ErrUnknownSchemaID],
// [ErrUnsupportedSchema] or [ErrMalformed], with the record's [Location];
// [DecodeError.Permanent] is false when the registry could not be reached, so
// the caller retries instead of dead-lettering. Values that do not fit their
// schema give an *[EncodeError]; a schema the registry refuses gives an error
// wrapping [ErrIncompatibleSchema] and the registry's *sr.ResponseError.
//
// Decoding never panics on bad input (FuzzDecode). goavro allocates an array
// block before reading it, so this package lowers goavro.MaxBlockCount, a
// process-wide setting, to 65536 items at init.
package schemas
