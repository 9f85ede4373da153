package nomis

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestScanObject(t *testing.T) {
	t.Parallel()
	type member struct {
		key     string
		escaped bool
		value   string
	}
	tests := []struct {
		name    string
		in      string
		members []member
		err     error // errNotObject, or a *syntaxError at offset
		offset  int
	}{
		{"empty object", ` { } `, nil, nil, 0},
		{"flat", `{"a":1,"b":"x\"y","c":null,"d":true,"e":-0.5e+3}`,
			[]member{{"a", false, "1"}, {"b", false, `"x\"y"`}, {"c", false, "null"}, {"d", false, "true"}, {"e", false, "-0.5e+3"}}, nil, 0},
		{"nested values skipped whole", `{"a":{"b":[1,{"c":[]}]},"d":[]}`,
			[]member{{"a", false, `{"b":[1,{"c":[]}]}`}, {"d", false, "[]"}}, nil, 0},
		{"escaped key", `{"a\u0062":1}`, []member{{`a\u0062`, true, "1"}}, nil, 0},
		{"white space", "\t{ \"a\" :\n1 }\r\n", []member{{"a", false, "1"}}, nil, 0},
		{"array", `[1]`, nil, errNotObject, 0},
		{"string", `"x"`, nil, errNotObject, 0},
		{"null", `null`, nil, errNotObject, 0},
		{"empty", ``, nil, &syntaxError{}, 0},
		{"trailing comma", `{"a":1,}`, []member{{"a", false, "1"}}, &syntaxError{}, 7},
		{"missing colon", `{"a" 1}`, nil, &syntaxError{}, 5},
		{"unquoted key", `{a:1}`, nil, &syntaxError{}, 1},
		{"leading zero", `{"a":01}`, []member{{"a", false, "0"}}, &syntaxError{}, 6},
		{"bare dot", `{"a":1.}`, nil, &syntaxError{}, 7},
		{"bad escape", `{"a":"\x"}`, nil, &syntaxError{}, 7},
		{"control character", "{\"a\":\"\x01\"}", nil, &syntaxError{}, 6},
		{"unterminated", `{"a":"x`, nil, &syntaxError{}, 7},
		{"two values", `{} {}`, nil, &syntaxError{}, 3},
		{"bad literal", `{"a":nul}`, nil, &syntaxError{}, 5},
		{"after an array", `[1] x`, nil, &syntaxError{}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var got []member
			err := scanObject([]byte(tt.in), func(k []byte, esc bool, v []byte) error {
				got = append(got, member{string(k), esc, string(v)})
				return nil
			})
			var wantSyntax *syntaxError
			switch {
			case tt.err == nil:
				require.NoError(t, err)
			case errors.As(tt.err, &wantSyntax):
				var se *syntaxError
				require.True(t, errors.As(err, &se), "want a syntax error, got %v", err)
				require.Equal(t, tt.offset, se.offset)
			default:
				require.ErrorIs(t, err, tt.err)
			}
			require.Equal(t, tt.members, got)
		})
	}
	stop := errors.New("stop")
	require.ErrorIs(t, scanObject([]byte(`{"a":1,"b":2}`), func([]byte, bool, []byte) error { return stop }), stop, "member's error ends the scan")
}

// FuzzScanObject checks scanObject against encoding/json: it accepts
// exactly the valid JSON objects, reports other valid JSON as errNotObject,
// and gives the same members (the last of a repeated key) as json.Unmarshal.
func FuzzScanObject(f *testing.F) {
	for _, seed := range []string{alertJSON, `{}`, `[]`, `{"a":[{"b":"\ud83d\ude00"}]}`, `{"a":1e5,"a":-0}`, ` "x" `, `{"a":"\u00e9"`, "{\"a\":\"\xff\"}"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]string{}
		err := scanObject(data, func(k []byte, esc bool, v []byte) error {
			key := string(k)
			if esc || !utf8.Valid(k) { // as encoding/json reads the key
				require.NoError(t, json.Unmarshal([]byte(`"`+key+`"`), &key))
			}
			got[key] = string(v)
			return nil
		})
		var want map[string]json.RawMessage
		jerr := json.Unmarshal(data, &want)
		switch {
		case !json.Valid(data):
			var se *syntaxError
			require.True(t, errors.As(err, &se), "invalid JSON accepted: %v", err)
		case jerr != nil || want == nil:
			require.ErrorIs(t, err, errNotObject)
		default:
			require.NoError(t, err)
			require.Len(t, got, len(want))
			for k, v := range want {
				require.JSONEq(t, string(v), got[k], k)
			}
		}
	})
}
