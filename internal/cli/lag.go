package cli

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/internal/service"
)

// LagConfig is the configuration of `alertsync lag`: how to reach Kafka,
// the topic prefix, and the consumer groups of the transformer and the
// applies, under the keys those components read them from.
type LagConfig struct {
	Kafka     kafka.Config       `key:"kafka"`
	Topics    kafka.TopicsConfig `key:"topics"`
	Log       config.Log         `key:"log"`
	Transform LagTransform       `key:"transform"`
	Apply     LagApply           `key:"apply"`
}

// LagTransform is the "transform" section of `alertsync lag`.
type LagTransform struct {
	Group string `key:"group" default:"alertsync-transform" required:"true" doc:"Consumer group of the transformers (transform.group of alertsync transform)."`
}

// LagApply is the "apply" section of `alertsync lag`.
type LagApply struct {
	Group string `key:"group" doc:"Consumer group of the applies (apply.group of alertsync apply). Empty: alertsync-apply-dps and alertsync-apply-nomis, one per target."`
}

// ErrLagOver is returned (wrapped) when a partition's lag exceeds
// --max-lag; main exits 1 on it.
var ErrLagOver = errors.New("lag over --max-lag")

// runLag is `alertsync lag`: the lag of the pipeline's consumer groups, per
// partition. Errors exit 2, lag over --max-lag exits 1.
func runLag(ctx context.Context, args []string, out, errOut io.Writer) error {
	return failuresExit2(lag(ctx, args, out, errOut), ErrLagOver)
}

func lag(ctx context.Context, args []string, out, errOut io.Writer) error {
	var cfg LagConfig
	fs := newFlagSet("lag", errOut)
	var only groupFlag
	fs.Var(&only, "group", "report this consumer group only (repeatable); by default every group of the pipeline")
	asJSON := fs.Bool("json", false, "print one JSON object instead of a table")
	maxLag := fs.Int64("max-lag", 0, "exit with status 1 when a partition lags more than this many records (checked only when given)")
	rest, err := loadConfig(fs, &cfg, args, os.LookupEnv)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("lag: unexpected arguments %q", rest)
	}
	checkMax := false
	fs.Visit(func(f *flag.Flag) { checkMax = checkMax || f.Name == "max-lag" })
	if *maxLag < 0 {
		return usagef("lag: --max-lag must not be negative, got %d", *maxLag)
	}
	groups, err := pipelineGroups(cfg).only(only)
	if err != nil {
		return err
	}
	rep, err := readLag(ctx, cfg.Kafka, service.NewLogger(cfg.Log, errOut), groups)
	if err != nil {
		return fmt.Errorf("lag: %w", err)
	}
	if *asJSON {
		err = rep.writeJSON(out)
	} else {
		err = rep.writeTable(out)
	}
	if err != nil {
		return err
	}
	if checkMax {
		if n, group, worst := rep.over(*maxLag); n > 0 {
			return fmt.Errorf("lag: %d of the partitions lag more than --max-lag %d, the most %s of group %s (%d records): %w",
				n, *maxLag, worst.name(), group, worst.Lag, ErrLagOver)
		}
	}
	return nil
}

// groupFlag is a repeatable --group.
type groupFlag []string

func (g *groupFlag) String() string     { return strings.Join(*g, ",") }
func (g *groupFlag) Set(v string) error { *g = append(*g, v); return nil }

// lagGroup is a consumer group of the pipeline and the topics its members
// consume (full names).
type lagGroup struct {
	name   string
	topics []string
}

type lagGroups []lagGroup

// pipelineGroups returns the pipeline's consumer groups, named as the
// components name them: transform.group, and each apply's apply.group or
// its default (an apply.group set for both applies is one group of both
// command topics).
func pipelineGroups(cfg LagConfig) lagGroups {
	tc := cfg.Topics
	// The transformer's inputs (transform.New).
	gs := lagGroups{{cfg.Transform.Group, []string{tc.Name(kafka.NOMISOffenderAlerts), tc.Name(kafka.NOMISPrisonerAlerts), tc.Name(kafka.DPSAlert)}}}
	for _, a := range []struct {
		name  string
		topic kafka.Topic
	}{{"apply-dps", kafka.CommandsDPS}, {"apply-nomis", kafka.CommandsNOMIS}} {
		r := apply.Runner{Name: a.name, Opts: apply.Options{Group: cfg.Apply.Group}}
		if i := slices.IndexFunc(gs, func(g lagGroup) bool { return g.name == r.Group() }); i >= 0 {
			gs[i].topics = append(gs[i].topics, tc.Name(a.topic))
			continue
		}
		gs = append(gs, lagGroup{r.Group(), []string{tc.Name(a.topic)}})
	}
	return gs
}

// only returns the groups named (all when none), refusing a name that is
// not one of them.
func (gs lagGroups) only(names []string) (lagGroups, error) {
	if len(names) == 0 {
		return gs, nil
	}
	var out lagGroups
	for _, n := range names {
		i := slices.IndexFunc(gs, func(g lagGroup) bool { return g.name == n })
		if i < 0 {
			known := make([]string, len(gs))
			for j, g := range gs {
				known[j] = g.name
			}
			return nil, usagef("lag: --group %q is not a consumer group of the pipeline (%s; see transform.group and apply.group)", n, strings.Join(known, ", "))
		}
		if !slices.ContainsFunc(out, func(g lagGroup) bool { return g.name == n }) {
			out = append(out, gs[i])
		}
	}
	return out, nil
}

// lagReport is what `alertsync lag` prints; its JSON form is documented in
// docs/lag.md.
type lagReport struct {
	Groups []groupLag `json:"groups"`
}

type groupLag struct {
	Group      string         `json:"group"`
	State      string         `json:"state"` // Stable, Empty, Dead (unknown to Kafka), PreparingRebalance, …
	Members    int            `json:"members"`
	Lag        int64          `json:"lag"` // the partitions' total
	Partitions []partitionLag `json:"partitions"`
}

type partitionLag struct {
	Topic     string     `json:"topic"`
	Partition int32      `json:"partition"`
	Committed *int64     `json:"committed"` // null: the group has committed no offset
	End       int64      `json:"end"`       // the last stable offset
	Lag       int64      `json:"lag"`
	Member    *lagMember `json:"member"` // null: assigned to no member

	from int64 // where the group reads from: the committed offset, or the log start
}

func (p *partitionLag) name() string { return p.Topic + "/" + strconv.Itoa(int(p.Partition)) }

type lagMember struct {
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	InstanceID string `json:"instance_id,omitempty"`
	MemberID   string `json:"member_id"`
}

// readLag reads the lag of groups: for each partition of their topics (and
// of any other topic assigned to their members), the last stable offset
// minus the committed offset, or minus the log start offset when the group
// has committed none. The pipeline's consumers read committed: what an
// open transaction has written is not theirs to read yet, and a committed
// offset resting on transaction markers is caught up (pastMarkers).
func readLag(ctx context.Context, kc kafka.Config, log *slog.Logger, groups lagGroups) (*lagReport, error) {
	cl, err := kafka.NewClient(kc, log, nil, kgo.ClientID(kc.ClientID+"-lag"))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.name
	}
	described, err := adm.DescribeGroups(ctx, names...)
	if err != nil {
		return nil, fmt.Errorf("describing consumer groups %s at kafka.brokers %s: %w (are the brokers up and reachable from here?)",
			strings.Join(names, ", "), strings.Join(kc.Brokers, ","), err)
	}
	topics := map[string][]string{} // by group
	var all []string
	for _, g := range groups {
		d := described[g.name]
		switch {
		case errors.Is(d.Err, kerr.GroupIDNotFound):
			// Kafka 4 (DescribeGroups v6) says so of a group it does not
			// know; older brokers call it Dead.
			d.Err, d.State = nil, "Dead"
			described[g.name] = d
		case d.Err != nil:
			return nil, fmt.Errorf("describing consumer group %s: %w", g.name, d.Err)
		}
		topics[g.name] = slices.Compact(slices.Sorted(slices.Values(append(slices.Clone(g.topics), d.AssignedPartitions().Topics()...))))
		all = append(all, topics[g.name]...)
	}
	all = slices.Compact(slices.Sorted(slices.Values(all)))
	ends, err := adm.ListCommittedOffsets(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("listing the last stable offsets of %s: %w", strings.Join(all, ", "), err)
	}
	starts, err := adm.ListStartOffsets(ctx, all...)
	if err != nil {
		return nil, fmt.Errorf("listing the start offsets of %s: %w", strings.Join(all, ", "), err)
	}

	rep := &lagReport{}
	from := map[string]map[int32]int64{} // where the lag of each lagging partition starts
	for _, g := range groups {
		d := described[g.name]
		committed, err := adm.FetchOffsets(ctx, g.name)
		if err == nil {
			err = committed.Error()
		}
		if errors.Is(err, kerr.GroupIDNotFound) {
			committed, err = nil, nil // none
		}
		if err != nil {
			return nil, fmt.Errorf("fetching the committed offsets of group %s: %w", g.name, err)
		}
		gl := groupLag{Group: g.name, State: d.State, Members: len(d.Members), Partitions: []partitionLag{}}
		owners := owners(d)
		for _, topic := range topics[g.name] {
			for _, p := range slices.Sorted(maps.Keys(ends[topic])) {
				end := ends[topic][p]
				if errors.Is(end.Err, kerr.UnknownTopicOrPartition) {
					continue // no such topic (yet)
				}
				if end.Err != nil {
					return nil, fmt.Errorf("listing the last stable offset of %s/%d: %w", topic, p, end.Err)
				}
				// Without a commit, the consumers start at the log start.
				pl := partitionLag{Topic: topic, Partition: p, End: end.Offset, Member: owners[topic][p], from: starts[topic][p].Offset}
				if c, ok := committed.Lookup(topic, p); ok && c.At >= 0 {
					pl.Committed = &c.At
					pl.from = max(pl.from, c.At)
				}
				if pl.Lag = max(0, end.Offset-pl.from); pl.Lag > 0 {
					if from[topic] == nil {
						from[topic] = map[int32]int64{}
					}
					from[topic][p] = pl.from // one group's, should two groups read a topic
				}
				gl.Partitions = append(gl.Partitions, pl)
			}
		}
		rep.Groups = append(rep.Groups, gl)
	}

	next, err := pastMarkers(ctx, kc, log, from, ends)
	if err != nil {
		return nil, err
	}
	for i := range rep.Groups {
		g := &rep.Groups[i]
		for j := range g.Partitions {
			p := &g.Partitions[j]
			if n, ok := next[p.Topic][p.Partition]; ok && from[p.Topic][p.Partition] == p.from {
				p.Lag = max(0, p.End-n)
			}
			g.Lag += p.Lag
		}
	}
	slices.SortFunc(rep.Groups, func(a, b groupLag) int { return cmp.Compare(a.Group, b.Group) })
	return rep, nil
}

// owners returns the member each partition of group d is assigned to.
func owners(d kadm.DescribedGroup) map[string]map[int32]*lagMember {
	out := map[string]map[int32]*lagMember{}
	for _, m := range d.Members {
		a, ok := m.Assigned.AsConsumer()
		if !ok {
			continue
		}
		lm := &lagMember{ClientID: m.ClientID, Host: strings.TrimPrefix(m.ClientHost, "/"), MemberID: m.MemberID}
		if m.InstanceID != nil {
			lm.InstanceID = *m.InstanceID
		}
		for _, t := range a.Topics {
			if out[t.Topic] == nil {
				out[t.Topic] = map[int32]*lagMember{}
			}
			for _, p := range t.Partitions {
				out[t.Topic][p] = lm
			}
		}
	}
	return out
}

// pastMarkers returns, for each partition of from, the offset at which a
// read-committed consumer starting at from reads its first record: past
// the transaction markers and aborted records there, or the last stable
// offset when nothing else comes before it. A consumer that has read a
// transaction's last record commits the offset of the transaction's
// commit marker: without this, a caught-up group would show a lag of 1 on
// each partition written in transactions (the command topics). It reads
// a batch or so of each partition, within kafka.retry_timeout; a partition
// not decided by then is left out of the result.
func pastMarkers(ctx context.Context, kc kafka.Config, log *slog.Logger, from map[string]map[int32]int64, ends kadm.ListedOffsets) (map[string]map[int32]int64, error) {
	next := map[string]map[int32]int64{}
	offsets := map[string]map[int32]kgo.Offset{}
	at := map[string]map[int32]int64{} // the undecided partitions, and how far reading them has got
	pending := 0
	for t, ps := range from {
		offsets[t], at[t] = map[int32]kgo.Offset{}, maps.Clone(ps)
		for p, o := range ps {
			offsets[t][p] = kgo.NewOffset().At(o)
			pending++
		}
	}
	if pending == 0 {
		return next, nil
	}
	cl, err := kafka.NewClient(kc, log, nil, kgo.ClientID(kc.ClientID+"-lag-markers"),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxPartitionBytes(64<<10))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	timeout := cmp.Or(kc.RetryTimeout, 30*time.Second)
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for pending > 0 {
		fs := cl.PollFetches(pctx)
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if pctx.Err() != nil {
			// Markers a compaction removed leave nothing to read: the lag of
			// these partitions counts the offsets, markers included.
			log.Warn("reading past the transaction markers at the committed offsets timed out; the lag of these partitions counts them",
				"partitions", pending, "timeout", timeout.String())
			return next, nil
		}
		if err := fs.Err0(); errors.Is(err, kerr.TopicAuthorizationFailed) {
			// Describing groups and listing offsets needs no READ on the
			// topics; this does.
			log.Warn("no permission to read the topics past the transaction markers at the committed offsets; the lag of these partitions counts them",
				"partitions", pending, "err", err)
			return next, nil
		} else if err != nil {
			return nil, fmt.Errorf("reading past the transaction markers at the committed offsets: %w", err)
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			n, ok := at[p.Topic][p.Partition]
			if !ok {
				return // decided already
			}
			end, done := ends[p.Topic][p.Partition].Offset, false
			for _, r := range p.Records {
				if !r.Attrs.IsControl() {
					n, done = r.Offset, true
					break
				}
				n = r.Offset + 1
				if done = n >= end; done {
					break
				}
			}
			if !done {
				at[p.Topic][p.Partition] = n
				return
			}
			delete(at[p.Topic], p.Partition)
			if next[p.Topic] == nil {
				next[p.Topic] = map[int32]int64{}
			}
			next[p.Topic][p.Partition] = n
			pending--
			cl.RemoveConsumePartitions(map[string][]int32{p.Topic: {p.Partition}})
		})
	}
	return next, nil
}

// over returns how many partitions lag more than limit, and the group and
// partition that lag most.
func (r *lagReport) over(limit int64) (n int, group string, worst partitionLag) {
	for _, g := range r.Groups {
		for _, p := range g.Partitions {
			if p.Lag <= limit {
				continue
			}
			n++
			if p.Lag > worst.Lag {
				group, worst = g.Group, p
			}
		}
	}
	return n, group, worst
}

func (r *lagReport) writeJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("writing the lag report: %w", err)
	}
	return nil
}

// writeTable writes a line per partition and a total per group.
func (r *lagReport) writeTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	// tabwriter buffers until Flush, which returns any write error.
	_, _ = fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITION\tCOMMITTED\tEND\tLAG\tMEMBER")
	for _, g := range r.Groups {
		for _, p := range g.Partitions {
			committed, member := "none", "-"
			if p.Committed != nil {
				committed = strconv.FormatInt(*p.Committed, 10)
			}
			if p.Member != nil {
				member = p.Member.ClientID + "/" + p.Member.Host
			}
			_, _ = fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\n", g.Group, p.Topic, p.Partition, committed, p.End, p.Lag, member)
		}
		members := "members"
		if g.Members == 1 {
			members = "member"
		}
		_, _ = fmt.Fprintf(tw, "%s\ttotal\t\t\t\t%d\t%s, %d %s\n", g.Group, g.Lag, g.State, g.Members, members)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing the lag report: %w", err)
	}
	return nil
}
