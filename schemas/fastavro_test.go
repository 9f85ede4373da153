package schemas

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const fastavroInstall = "python3 -m pip install fastavro"

// TestFastavroDecodesCodecOutput checks the codec against a second Avro
// implementation: Python's fastavro decodes every sample the codec encoded,
// and the two agree field by field on dates, timestamps, uuids, nulls,
// unions, enums, arrays and bytes.
func TestFastavroDecodesCodecOutput(t *testing.T) {
	t.Parallel()
	python, err := exec.LookPath("python3")
	require.NoError(t, err, "python3 is needed for this test: install Python 3, then run `%s`", fastavroInstall)

	b := newCodingRegistryWithBinds(t)
	type item struct {
		Name    string `json:"name"`
		Schema  string `json:"schema"`
		Payload string `json:"payload"`
	}
	var input bytes.Buffer
	enc := json.NewEncoder(&input)
	bySample := make(map[string]sample)
	for _, s := range samples() {
		p, err := encoderFor(b.topics[s.topic], s.part).Append(nil, s.native)
		require.NoError(t, err)
		require.NoError(t, enc.Encode(item{Name: s.name, Schema: subjectOf(s.topic, s.part).Schema, Payload: base64.StdEncoding.EncodeToString(p)}))
		bySample[s.name] = s
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/fastavro_decode.py")
	cmd.Stdin = &input
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 3 {
			t.Fatalf("fastavro is not installed: run `%s` (%s)", fastavroInstall, stderr.String())
		}
		t.Fatalf("running fastavro_decode.py: %v\n%s", err, stderr.String())
	}

	seen := 0
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var out struct {
			Name     string          `json:"name"`
			SchemaID int             `json:"schema_id"`
			Value    json.RawMessage `json:"value"`
			Error    string          `json:"error"`
		}
		require.NoError(t, json.Unmarshal(sc.Bytes(), &out))
		s, ok := bySample[out.Name]
		require.True(t, ok, "unexpected output %q", out.Name)
		seen++
		t.Run(s.name, func(t *testing.T) {
			require.Empty(t, out.Error, "fastavro could not decode the codec's output")
			assert.Equal(t, encoderFor(b.topics[s.topic], s.part).ID(), out.SchemaID, "schema id read from the header by Python")
			want, err := normalize(parseSchema(t, subjectOf(s.topic, s.part).Schema), s.native)
			require.NoError(t, err)
			requireSameTree(t, jsonTree(t, want), decodeJSONTree(t, out.Value))
		})
	}
	require.NoError(t, sc.Err())
	require.Equal(t, len(bySample), seen, "one answer per sample")
}
