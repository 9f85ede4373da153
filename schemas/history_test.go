package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"testing"

	"github.com/hamba/avro/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/sr"
)

var freeze = flag.Bool("freeze", false,
	"TestSchemaHistory: write history/<subject>/v<N+1>.avsc for each subject whose schema changed compatibly since its newest frozen version")

const (
	historyDir = "history"
	freezeCmd  = "go test ./schemas -run TestSchemaHistory -args -freeze"
)

// checkCompat checks that next may follow prev (and, for transitive
// levels, every frozen version in all) under level, with hamba/avro's
// schema-resolution checker.
func checkCompat(level sr.CompatibilityLevel, prev, next avro.Schema) error {
	sc := avro.NewSchemaCompatibility()
	backward := func() error {
		if err := sc.Compatible(next, prev); err != nil {
			return fmt.Errorf("new schema cannot read data written with the old one: %w", err)
		}
		return nil
	}
	forward := func() error {
		if err := sc.Compatible(prev, next); err != nil {
			return fmt.Errorf("old schema cannot read data written with the new one: %w", err)
		}
		return nil
	}
	switch level {
	case sr.CompatNone:
		return nil
	case sr.CompatBackward, sr.CompatBackwardTransitive:
		return backward()
	case sr.CompatForward, sr.CompatForwardTransitive:
		return forward()
	case sr.CompatFull, sr.CompatFullTransitive:
		return errors.Join(backward(), forward())
	}
	return fmt.Errorf("unknown compatibility level %v", level)
}

func transitive(level sr.CompatibilityLevel) bool {
	return level == sr.CompatBackwardTransitive || level == sr.CompatForwardTransitive || level == sr.CompatFullTransitive
}

type frozen struct {
	version int
	path    string
	text    string // compact
}

var versionFile = regexp.MustCompile(`^v([1-9][0-9]*)\.avsc$`)

// readHistory returns the frozen versions of a subject in order, requiring
// v1..vN without gaps.
func readHistory(t *testing.T, dir string) []frozen {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	var out []frozen
	for _, e := range entries {
		m := versionFile.FindStringSubmatch(e.Name())
		require.NotNil(t, m, "unexpected file %s in %s: frozen versions are named v<N>.avsc", e.Name(), dir)
		n, _ := strconv.Atoi(m[1])
		p := filepath.Join(dir, e.Name())
		data, err := os.ReadFile(p)
		require.NoError(t, err)
		text, err := compactSchema(data)
		require.NoError(t, err, "parsing %s", p)
		out = append(out, frozen{version: n, path: p, text: text})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i, f := range out {
		require.Equal(t, i+1, f.version, "frozen versions of %s must be v1..vN without gaps", dir)
	}
	return out
}

// compactSchema returns schema JSON in the compact form Subject.Schema uses,
// keys in document order.
func compactSchema(data []byte) (string, error) {
	v, err := parseJSON(data)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(v)
	return string(b), err
}

func writeFrozen(t *testing.T, dir string, version int, text string) string {
	t.Helper()
	var buf bytes.Buffer
	require.NoError(t, json.Indent(&buf, []byte(text), "", "  "))
	buf.WriteByte('\n')
	require.NoError(t, os.MkdirAll(dir, 0o755))
	p := filepath.Join(dir, fmt.Sprintf("v%d.avsc", version))
	_, err := os.Stat(p)
	require.ErrorIs(t, err, os.ErrNotExist, "refusing to overwrite frozen %s", p)
	require.NoError(t, os.WriteFile(p, buf.Bytes(), 0o644))
	return p
}

// TestSchemaHistory checks every subject's schema against its released
// (frozen) versions in schemas/history/<subject>/v<N>.avsc, in the subject's
// compatibility level, the way the registry will when the schema is
// registered: each frozen version against the one before it, and the current
// schema against the newest. A compatible change fails too, until it is
// frozen as the next version with -freeze, so that every schema that can
// reach a registry is in the history.
func TestSchemaHistory(t *testing.T) {
	known := make(map[string]bool)
	for _, tp := range Topics() {
		for _, s := range []Subject{tp.Key, tp.Value} {
			known[s.Name] = true
			t.Run(s.Name, func(t *testing.T) {
				dir := filepath.Join(historyDir, s.Name)
				versions := readHistory(t, dir)
				if len(versions) == 0 {
					if *freeze {
						t.Logf("froze %s", writeFrozen(t, dir, 1, s.Schema))
						return
					}
					t.Fatalf("subject %s has no frozen version: run `%s` and commit %s/v1.avsc", s.Name, freezeCmd, dir)
				}
				parsed := make([]avro.Schema, len(versions))
				for i, v := range versions {
					parsed[i] = parseSchema(t, v.text)
				}
				for i := 1; i < len(versions); i++ {
					prevs := parsed[i-1 : i]
					if transitive(s.Compatibility) {
						prevs = parsed[:i]
					}
					for j, p := range prevs {
						require.NoError(t, checkCompat(s.Compatibility, p, parsed[i]),
							"frozen %s breaks %s compatibility with %s", versions[i].path, s.Compatibility, versions[j].path)
					}
				}

				newest := versions[len(versions)-1]
				current := parseSchema(t, s.Schema)
				prevs := parsed[len(parsed)-1:]
				if transitive(s.Compatibility) {
					prevs = parsed
				}
				for j, p := range prevs {
					if err := checkCompat(s.Compatibility, p, current); err != nil {
						t.Fatalf("the schema of %s breaks %s compatibility with the released %s: %v\n"+
							"Released versions cannot change: add fields with defaults, widen enums that have a default, "+
							"or give the data a new topic.", s.Name, s.Compatibility, versions[j].path, err)
					}
				}
				if s.Schema != newest.text {
					if *freeze {
						t.Logf("froze %s", writeFrozen(t, dir, newest.version+1, s.Schema))
						return
					}
					t.Fatalf("the schema of %s changed (compatibly) since %s: run `%s` and commit %s/v%d.avsc",
						s.Name, newest.path, freezeCmd, dir, newest.version+1)
				}
			})
		}
	}

	t.Run("no history of unknown subjects", func(t *testing.T) {
		entries, err := os.ReadDir(historyDir)
		require.NoError(t, err)
		for _, e := range entries {
			assert.True(t, known[e.Name()], "%s/%s is the history of no subject in the topic table", historyDir, e.Name())
		}
	})
}

// TestCompatibilityFixtures proves that the checker TestSchemaHistory relies
// on rejects the breaks it must catch and accepts the changes evolution
// relies on, with the level logic of checkCompat.
func TestCompatibilityFixtures(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("testdata", "compat", "*.json"))
	require.NoError(t, err)
	require.NotEmpty(t, files)

	counts := make(map[string]int)
	for _, f := range files {
		data, err := os.ReadFile(f)
		require.NoError(t, err)
		var fx struct {
			Mode       string          `json:"mode"`
			Compatible bool            `json:"compatible"`
			Why        string          `json:"why"`
			Old        json.RawMessage `json:"old"`
			New        json.RawMessage `json:"new"`
		}
		require.NoError(t, json.Unmarshal(data, &fx), f)
		var level sr.CompatibilityLevel
		require.NoError(t, level.UnmarshalText([]byte(fx.Mode)), f)
		counts[fmt.Sprintf("%s/%v", level, fx.Compatible)]++

		t.Run(filepath.Base(f), func(t *testing.T) {
			t.Parallel()
			err := checkCompat(level, parseSchema(t, string(fx.Old)), parseSchema(t, string(fx.New)))
			if fx.Compatible {
				assert.NoError(t, err, "should be accepted: %s", fx.Why)
			} else {
				assert.Error(t, err, "should be rejected: %s", fx.Why)
			}
		})
	}
	for _, k := range []string{"BACKWARD/false", "BACKWARD/true", "FULL/false", "FULL/true"} {
		assert.Positive(t, counts[k], "fixtures need at least one %s case", k)
	}
}
