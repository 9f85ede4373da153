package nomis

import (
	"errors"
	"fmt"
)

// The journal's images are flat JSON objects of a few dozen members, read
// once each. scanObject walks one in a single pass without building a map
// or decoding values it is not asked for: encoding/json's generic decoding
// took most of the capture's CPU time.

// errNotObject: the input is valid JSON but not an object.
var errNotObject = errors.New("not a JSON object")

// syntaxError is a JSON syntax error at a byte offset; it never quotes the
// input.
type syntaxError struct{ offset int }

func (e *syntaxError) Error() string { return fmt.Sprintf("invalid JSON at byte %d", e.offset) }

// maxDepth bounds the nesting of values scanObject skips.
const maxDepth = 1000

// scanObject checks that data is one JSON object (RFC 8259, surrounded by
// optional white space) and calls member for each of its members in order,
// with the key's raw bytes between the quotes (escaped reports a backslash
// in them) and the value's raw bytes. It returns errNotObject for valid
// JSON of another kind, a *syntaxError for invalid JSON, or member's error.
func scanObject(data []byte, member func(key []byte, escaped bool, value []byte) error) error {
	s := scanner{data: data}
	s.space()
	if s.pos >= len(data) || data[s.pos] != '{' {
		if err := s.value(0); err != nil {
			return err
		}
		if s.space(); s.pos != len(data) {
			return s.fail()
		}
		return errNotObject
	}
	s.pos++
	s.space()
	if s.peek() == '}' {
		s.pos++
	} else {
		for {
			if s.peek() != '"' {
				return s.fail()
			}
			kstart := s.pos + 1
			escaped, err := s.str()
			if err != nil {
				return err
			}
			key := data[kstart : s.pos-1]
			s.space()
			if s.peek() != ':' {
				return s.fail()
			}
			s.pos++
			s.space()
			vstart := s.pos
			if err := s.value(0); err != nil {
				return err
			}
			if err := member(key, escaped, data[vstart:s.pos]); err != nil {
				return err
			}
			s.space()
			switch s.peek() {
			case ',':
				s.pos++
				s.space()
				continue
			case '}':
				s.pos++
			default:
				return s.fail()
			}
			break
		}
	}
	if s.space(); s.pos != len(data) {
		return s.fail()
	}
	return nil
}

type scanner struct {
	data []byte
	pos  int
}

func (s *scanner) fail() error { return &syntaxError{offset: s.pos} }

// peek returns the byte at pos, or 0 at the end.
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) space() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value skips one JSON value starting at pos.
func (s *scanner) value(depth int) error {
	if depth > maxDepth {
		return s.fail()
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{', c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		s.pos++
		s.space()
		if s.peek() == end {
			s.pos++
			return nil
		}
		for {
			if c == '{' {
				if s.peek() != '"' {
					return s.fail()
				}
				if _, err := s.str(); err != nil {
					return err
				}
				s.space()
				if s.peek() != ':' {
					return s.fail()
				}
				s.pos++
				s.space()
			}
			if err := s.value(depth + 1); err != nil {
				return err
			}
			s.space()
			switch s.peek() {
			case ',':
				s.pos++
				s.space()
			case end:
				s.pos++
				return nil
			default:
				return s.fail()
			}
		}
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	}
	return s.fail()
}

func (s *scanner) literal(lit string) error {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return s.fail()
	}
	s.pos += len(lit)
	return nil
}

// str skips a string starting at the quote at pos; escaped reports a
// backslash in it.
func (s *scanner) str() (escaped bool, err error) {
	s.pos++
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return escaped, nil
		case c < 0x20:
			return false, s.fail()
		case c == '\\':
			escaped = true
			s.pos++
			switch s.peek() {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos++
			case 'u':
				s.pos++
				for range 4 {
					if !isHex(s.peek()) {
						return false, s.fail()
					}
					s.pos++
				}
			default:
				return false, s.fail()
			}
		default:
			s.pos++
		}
	}
	return false, s.fail()
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *scanner) number() error {
	if s.peek() == '-' {
		s.pos++
	}
	switch c := s.peek(); {
	case c == '0':
		s.pos++
	case c >= '1' && c <= '9':
		s.digits()
	default:
		return s.fail()
	}
	if s.peek() == '.' {
		s.pos++
		if !s.digits() {
			return s.fail()
		}
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.pos++
		if c := s.peek(); c == '+' || c == '-' {
			s.pos++
		}
		if !s.digits() {
			return s.fail()
		}
	}
	return nil
}

// digits skips [0-9]* and reports whether there was one.
func (s *scanner) digits() bool {
	start := s.pos
	for c := s.peek(); c >= '0' && c <= '9'; c = s.peek() {
		s.pos++
	}
	return s.pos > start
}
