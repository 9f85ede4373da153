package config

import "log/slog"

// Secret holds a credential (a database password, a SASL or registry
// password). It is loaded only from the environment or from a file named by
// a *_FILE variable or key, never from a flag, and it never prints: its
// String, GoString, LogValue and MarshalText forms are a fixed placeholder.
// Use Reveal at the single place where the value is handed to a driver.
type Secret struct{ v string }

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{v: v} }

const redacted = "[redacted]"

// Reveal returns the secret value. Call it only to pass the value to a client.
func (s Secret) Reveal() string { return s.v }

// IsSet reports whether a non-empty value was configured.
func (s Secret) IsSet() bool { return s.v != "" }

// String implements fmt.Stringer without revealing the value.
func (s Secret) String() string {
	if s.v == "" {
		return ""
	}
	return redacted
}

// GoString implements fmt.GoStringer for %#v without revealing the value.
func (s Secret) GoString() string { return s.String() }

// LogValue implements slog.LogValuer so structured logs never carry the value.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML) without revealing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
