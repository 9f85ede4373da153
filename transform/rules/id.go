package rules

import (
	"strconv"

	"github.com/google/uuid"
)

// commandNamespace is the UUIDv5 namespace of command ids.
var commandNamespace = uuid.MustParse("8b1e4c0e-5a3f-5f7e-9a51-6c1d2f0a7b33")

// CommandID returns the deterministic id of a command: the UUIDv5 (SHA-1
// name-based) of the origin side, the source position, the kind and the
// alert key (NOMIS booking and sequence, a DPS id, or the prison number of
// a REPLACE_PRISONER). The same source record always yields the same id,
// so a repeated record carries the id of its first delivery.
func CommandID(origin Side, pos Position, kind Kind, key string) string {
	var buf [128]byte
	b := append(buf[:0], origin.String()...)
	b = append(b, '|')
	b = strconv.AppendInt(b, pos.Commit, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, pos.Change, 10)
	b = append(b, '|')
	b = append(b, kind.String()...)
	b = append(b, '|')
	b = append(b, key...)
	return uuid.NewSHA1(commandNamespace, b).String()
}

// nomisKey returns the alert key of a NOMIS row for CommandID.
func nomisKey(bookID int64, seq int32) string {
	var buf [32]byte
	b := strconv.AppendInt(buf[:0], bookID, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(seq), 10)
	return string(b)
}
