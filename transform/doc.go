// Package transform maps NOMIS's booking-level alerts to DPS's person-level
// alerts and back. Its rules are a pure package (transform/rules: no I/O,
// unit tested and fuzzed); its stream loop consumes the change topics and
// produces target commands in Kafka transactions (exactly-once, DESIGN.md
// guarantee 1) and drops records the sync itself wrote (guarantee 3).
//
// Status: being built (issue 6). The rules (transform/rules) and the
// decoding of change records into their inputs (transform/decode) exist;
// the stream loop, reference data and direction switches do not.
package transform
