package rules

import (
	"crypto/sha256"
	"encoding/hex"
	"unicode/utf8"
)

// Limits of NOMIS columns the DPS → NOMIS direction writes.
const (
	MaxCommentBytes = 4000 // COMMENT_TEXT: VARCHAR2(4000), bytes of UTF-8
	// MaxDescriptionChars is DPS's limit of description, in characters
	// (DOMAIN.md "Validation limits"). A NOMIS comment fits unless NOMIS
	// holds more than 4000 bytes (MAX_STRING_SIZE=EXTENDED, or a widened
	// column): such a comment goes to the DLQ rather than being cut.
	MaxDescriptionChars = 4000
	MaxAuthorisedBytes  = 40 // AUTHORIZE_PERSON_TEXT: VARCHAR2(40), bytes
	MaxNOMISUserBytes   = 32 // CREATE_USER_ID, MODIFY_USER_ID: VARCHAR2(32)
)

// userKeep is how many bytes of a too-long user id ShortenUser keeps before
// its "~" and 8 hex digits.
const userKeep = MaxNOMISUserBytes - 1 - 8

// TruncateUTF8 returns the longest prefix of s of at most n bytes that
// ends on a rune boundary (s itself when it fits).
func TruncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// ShortenUser returns a NOMIS user id (at most 32 bytes) for the DPS user id
// u (up to 64 characters). The rule: u unchanged when it fits in 32 bytes;
// otherwise its first 23 bytes (cut back to a rune boundary), "~", and the
// first 8 hex digits of the SHA-256 of the whole u. The result stays
// readable, is the same for the same u every time, and two long ids sharing
// their first 23 bytes still differ (unless their hashes collide in 32 bits).
func ShortenUser(u string) string {
	if len(u) <= MaxNOMISUserBytes {
		return u
	}
	sum := sha256.Sum256([]byte(u))
	return TruncateUTF8(u, userKeep) + "~" + hex.EncodeToString(sum[:4])
}
