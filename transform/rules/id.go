package rules

import (
	"crypto/sha1" //nolint:gosec // UUIDv5 is defined over SHA-1; ids, not security
	"strconv"

	"github.com/google/uuid"
)

// commandNamespace is the UUIDv5 namespace of command ids.
var commandNamespace = uuid.MustParse("8b1e4c0e-5a3f-5f7e-9a51-6c1d2f0a7b33")

// CommandID returns the deterministic id of a command: the UUIDv5 (SHA-1
// name-based, RFC 9562) of the origin side, the source position, the kind
// and the alert key (NOMIS booking and sequence, a DPS id, or the prison
// number of a REPLACE_PRISONER). The same source record always yields the
// same id, so a repeated record carries the id of its first delivery.
func CommandID(origin Side, pos Position, kind Kind, key string) string {
	var buf [192]byte
	return commandID(appendName(buf[:0], origin, pos, kind, key))
}

// commandIDNOMIS is CommandID for a NOMIS alert key, without building the
// key's string.
func commandIDNOMIS(pos Position, kind Kind, bookID int64, seq int32) string {
	var buf [192]byte
	b := appendName(buf[:0], SideNOMIS, pos, kind, "")
	b = strconv.AppendInt(b, bookID, 10)
	b = append(b, '/')
	b = strconv.AppendInt(b, int64(seq), 10)
	return commandID(b)
}

// appendName appends the namespace and the name of a command id up to and
// including key.
func appendName(b []byte, origin Side, pos Position, kind Kind, key string) []byte {
	b = append(b, commandNamespace[:]...)
	b = append(b, origin.String()...)
	b = append(b, '|')
	b = strconv.AppendInt(b, pos.Commit, 10)
	b = append(b, '|')
	b = strconv.AppendInt(b, pos.Change, 10)
	b = append(b, '|')
	b = append(b, kind.String()...)
	b = append(b, '|')
	return append(b, key...)
}

// commandID returns the UUIDv5 of namespace+name (the bytes of nsName):
// what uuid.NewSHA1 computes, without its allocations.
func commandID(nsName []byte) string {
	sum := sha1.Sum(nsName) //nolint:gosec // UUIDv5 is defined over SHA-1; ids, not security
	var u uuid.UUID
	copy(u[:], sum[:16])
	u[6] = (u[6] & 0x0f) | 0x50 // version 5
	u[8] = (u[8] & 0x3f) | 0x80 // RFC 9562 variant
	return u.String()
}
