//go:build broker

package e2e

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
	"github.com/alertsync/alertsync/internal/testenv/topictest"
	"github.com/alertsync/alertsync/schemas"
)

// command is what the suites read of a command record (nomisKey:
// "<booking>/<seq>" when it carries one).
type command struct {
	id, kind, origin, prisonNumber, dpsID, nomisKey string
}

// outcome is what the suite reads of an outcome record.
type outcome struct {
	commandID, target, result, reason, prisonNumber string
}

// traffic is everything the pipeline has sent so far on the command and
// outcome topics (read committed), and the DLQ's size.
type traffic struct {
	toDPS, toNOMIS []command
	outcomes       []outcome
	dlq            int64
}

// readTraffic reads the command and outcome topics to their current ends.
func (w *world) readTraffic(t *testing.T) traffic {
	t.Helper()
	adm := kadm.NewClient(kafkatest.Client(t, w.brokers))
	rd := topictest.Reader{Brokers: w.brokers, Registry: w.srcl, ReadCommitted: true}
	read := func(topic string) []topictest.Record {
		name := w.prefix + topic
		return rd.ToEnds(t, name, topictest.EndOffsets(context.Background(), t, adm, name))
	}
	commands := func(topic string) []command {
		var out []command
		for _, r := range read(topic) {
			c := command{id: text(r.Value["command_id"]), kind: text(r.Value["kind"]), origin: text(r.Value["origin_side"]),
				prisonNumber: text(r.Value["prison_number"]), dpsID: text(r.Value["dps_alert_id"])}
			if b, s := text(r.Value["nomis_booking_id"]), text(r.Value["nomis_alert_seq"]); b != "" && s != "" {
				c.nomisKey = b + "/" + s
			}
			out = append(out, c)
		}
		return out
	}
	tr := traffic{toDPS: commands(schemas.TopicCommandsDPS), toNOMIS: commands(schemas.TopicCommandsNOMIS)}
	for _, r := range read(schemas.TopicOutcomes) {
		tr.outcomes = append(tr.outcomes, outcome{commandID: text(r.Value["command_id"]), target: text(r.Value["target"]),
			result: text(r.Value["outcome"]), reason: text(r.Value["reason"]), prisonNumber: text(r.Value["prison_number"])})
	}
	tr.dlq = topictest.Sum(topictest.EndOffsets(context.Background(), t, adm, w.prefix+schemas.TopicDLQ))
	return tr
}

// text returns a decoded Avro string, enum or optional string ("" for
// null).
func text(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case map[string]any: // a union as goavro decodes it: {"string": "…"}
		for _, inner := range x {
			return text(inner)
		}
		return ""
	default:
		return fmt.Sprint(x)
	}
}

// outcomesByCommand groups outcomes by command id.
func (tr traffic) outcomesByCommand() map[string][]outcome {
	out := map[string][]outcome{}
	for _, o := range tr.outcomes {
		out[o.commandID] = append(out[o.commandID], o)
	}
	return out
}

// perPrisoner counts commands by prison number and kind, for messages.
func perPrisoner(cmds []command) string {
	n := map[string]int{}
	for _, c := range cmds {
		n[c.prisonNumber+" "+c.kind]++
	}
	keys := make([]string, 0, len(n))
	for k := range n {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s×%d", k, n[k]))
	}
	return strings.Join(parts, ", ")
}
