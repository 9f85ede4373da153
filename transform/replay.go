package transform

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/kafka"
)

// ErrGroupActive is returned by Replay while transformers of the group run.
var ErrGroupActive = errors.New("the transformers' consumer group has members")

// Replay rewinds the consumer group's committed offsets on the source
// topics of dir to the first record written at or after from, so that the
// transformers consume those records again at their next start: the way to
// turn the records of a period when dir was switched off into commands
// after all. It never moves an offset forward, and refuses while any
// transformer of the group runs (its offsets would overwrite the rewind).
// Replicas are static group members, which do not leave the group when they
// stop: the group forgets a stopped one after transform.session_timeout, so
// Replay waits that long (plus 5 s) for the group to empty.
// Records replayed that had already produced commands produce them again
// with the same command ids; the applies skip them by position.
func Replay(ctx context.Context, cfg Config, dir Direction, from time.Time, out io.Writer, log *slog.Logger) error {
	kc := cfg.Pipeline.Kafka
	cl, err := kafka.NewClient(kc, log, nil, kgo.ClientID(kc.ClientID+"-transform-replay"))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	group := cfg.Transform.Group
	if err := waitGroupEmpty(ctx, adm, group, cfg.Transform.SessionTimeout+5*time.Second, log); err != nil {
		return err
	}
	var topics []string
	if dir == NOMISToDPS {
		topics = []string{cfg.Pipeline.Topics.Name(kafka.NOMISOffenderAlerts), cfg.Pipeline.Topics.Name(kafka.NOMISPrisonerAlerts)}
	} else {
		topics = []string{cfg.Pipeline.Topics.Name(kafka.DPSAlert)}
	}
	at, err := adm.ListOffsetsAfterMilli(ctx, from.UnixMilli(), topics...)
	if err != nil {
		return fmt.Errorf("listing the offsets at %s: %w", from.Format(time.RFC3339), err)
	}
	if err := at.Error(); err != nil {
		return fmt.Errorf("listing the offsets at %s: %w", from.Format(time.RFC3339), err)
	}
	committed, err := adm.FetchOffsetsForTopics(ctx, group, topics...)
	if err != nil {
		return fmt.Errorf("fetching the offsets of group %s: %w", group, err)
	}
	set := kadm.Offsets{}
	type row struct {
		topic     string
		partition int32
		old, new  int64
	}
	var rows []row
	at.Each(func(o kadm.ListedOffset) {
		c, ok := committed.Lookup(o.Topic, o.Partition)
		if !ok || c.Err != nil || c.At < 0 {
			return // nothing committed: the group starts at the beginning anyway
		}
		if o.Offset < c.At {
			set.Add(kadm.Offset{Topic: o.Topic, Partition: o.Partition, At: o.Offset, LeaderEpoch: -1})
			rows = append(rows, row{o.Topic, o.Partition, c.At, o.Offset})
		}
	})
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].topic != rows[j].topic {
			return rows[i].topic < rows[j].topic
		}
		return rows[i].partition < rows[j].partition
	})
	if len(rows) == 0 {
		_, err := fmt.Fprintf(out, "nothing to replay: group %s has consumed no record of %v written at or after %s\n", group, topics, from.Format(time.RFC3339))
		return err
	}
	resp, err := adm.CommitOffsets(ctx, group, set)
	if err != nil {
		return fmt.Errorf("committing the rewound offsets of group %s: %w", group, err)
	}
	if err := resp.Error(); err != nil {
		return fmt.Errorf("committing the rewound offsets of group %s: %w", group, err)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	_, _ = fmt.Fprintln(tw, "TOPIC\tPARTITION\tFROM OFFSET\tTO OFFSET\tRECORDS")
	total := int64(0)
	for _, r := range rows {
		_, _ = fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", r.topic, r.partition, r.old, r.new, r.old-r.new)
		total += r.old - r.new
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "group %s rewound by %d records (%s since %s); they are transformed again at the next start\n",
		group, total, dir, from.Format(time.RFC3339))
	return err
}

// waitGroupEmpty waits up to wait for group to have no members.
func waitGroupEmpty(ctx context.Context, adm *kadm.Client, group string, wait time.Duration, log *slog.Logger) error {
	deadline := time.Now().Add(wait)
	logged := false
	for {
		described, err := adm.DescribeGroups(ctx, group)
		if err != nil {
			return fmt.Errorf("describing group %s: %w", group, err)
		}
		g, ok := described[group]
		if ok && g.Err != nil {
			return fmt.Errorf("describing group %s: %w", group, g.Err)
		}
		if !ok || len(g.Members) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replaying into group %s: %w (state %s, %d members): stop every transformer first", group, ErrGroupActive, g.State, len(g.Members))
		}
		if !logged && log != nil {
			log.Info("waiting for the group's members to leave (a stopped replica is forgotten after transform.session_timeout)",
				"group", group, "members", len(g.Members))
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
