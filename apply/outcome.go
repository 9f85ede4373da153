package apply

import (
	"encoding/binary"

	"github.com/alertsync/alertsync/transform/rules"
)

// The relay writes outcome records straight in Avro binary, in the
// registered alertsync.outcomes schemas (schemas/avro/outcome), instead of
// building goavro natives: outcomes are one record per command, and the
// goavro path cost the apply about a tenth of its CPU. outcome_test.go
// checks the bytes against goavro's for every optional field set and unset.

// Enum indexes of the outcome schema.
var (
	sideIndex   = map[string]int64{"NOMIS": 1, "DPS": 2}
	resultIndex = map[Result]int64{Applied: 1, Skipped: 2, Conflict: 3, Failed: 4}
)

// appendHeader appends the wire-format header of schema id.
func appendHeader(b []byte, id int) []byte {
	return binary.BigEndian.AppendUint32(append(b, 0), uint32(id)) //nolint:gosec // registry ids are positive int32
}

func appendAvroString(b []byte, s string) []byte {
	b = binary.AppendVarint(b, int64(len(s)))
	return append(b, s...)
}

func appendAvroOptString(b []byte, s *string) []byte {
	if s == nil {
		return binary.AppendVarint(b, 0)
	}
	return appendAvroString(binary.AppendVarint(b, 1), *s)
}

// appendOutcomeKey appends the outcome key of prison number to b, in
// schema id.
func appendOutcomeKey(b []byte, id int, prisonNumber string) []byte {
	return appendAvroString(appendHeader(b, id), prisonNumber)
}

// appendOutcomeValue appends the outcome of o, applied to target ("DPS" or
// "NOMIS"), to b, in schema id.
func appendOutcomeValue(b []byte, id int, o *OutboxRow, target string) []byte {
	b = appendHeader(b, id)
	b = appendAvroString(b, o.CommandID)
	b = binary.AppendVarint(b, sideIndex[target])
	b = binary.AppendVarint(b, resultIndex[o.Result])
	b = appendAvroOptString(b, o.Reason)
	b = appendAvroString(b, o.PrisonNumber)
	b = appendAvroOptString(b, o.DPSAlertID)
	if o.NOMISBookingID == nil {
		b = binary.AppendVarint(b, 0)
	} else {
		b = binary.AppendVarint(binary.AppendVarint(b, 1), *o.NOMISBookingID)
	}
	if o.NOMISAlertSeq == nil {
		b = binary.AppendVarint(b, 0)
	} else {
		b = binary.AppendVarint(binary.AppendVarint(b, 1), int64(*o.NOMISAlertSeq))
	}
	b = appendPosition(b, o.SourcePosition)
	b = binary.AppendVarint(b, o.SourceCommitTime.UnixMicro())
	return binary.AppendVarint(b, o.AppliedAt.UnixMicro())
}

func appendPosition(b []byte, p rules.Position) []byte {
	return binary.AppendVarint(binary.AppendVarint(b, p.Commit), p.Change)
}
