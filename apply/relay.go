package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/schemas"
	"github.com/alertsync/alertsync/transform/rules"
)

// OutboxRow is one outcome (and, for a FAILED or held command, its DLQ
// entry) in an outbox batch.
type OutboxRow struct {
	CommandID        string
	Result           Result
	Reason           *string
	PrisonNumber     string
	DPSAlertID       *string
	NOMISBookingID   *int64
	NOMISAlertSeq    *int32
	Origin           rules.Side
	SourcePosition   rules.Position
	SourceCommitTime time.Time
	AppliedAt        time.Time // set by the relay from the batch
	DLQ              *DLQEntry
}

// DLQEntry is the DLQ part of an outbox row: the command as consumed.
type DLQEntry struct {
	Topic      string
	Partition  int32
	Offset     int64
	Key, Value []byte
	ErrorKind  string
	Error      string
	HeldBehind *string
	AlertKey   *string
}

// Outbox is the target's table of unpublished outcome batches (one per
// apply transaction, outbox.go).
type Outbox interface {
	// Pending returns up to limit unpublished batches, oldest first.
	Pending(ctx context.Context, limit int) ([]OutboxBatch, error)
	// Published removes batches whose records Kafka acknowledged.
	Published(ctx context.Context, ids []int64) error
}

// HeaderOutboxID is the header of an outcome record naming the outbox
// batch and row it was published from ("apply-dps/<batch>/<row>"): a row
// published twice (after a partial failure or a crash) carries the same
// value, so consumers can tell a repeat from a second outcome of the same
// command.
const HeaderOutboxID = "alertsync-outbox-id"

// relay publishes the outbox: outcomes to alertsync.outcomes (keyed by
// prison number, as the commands) and DLQ entries to alertsync.dlq, then marks the rows. A
// crash between the two publishes a row again: outcomes carry their command
// id, so consumers deduplicate; nothing is lost.
type relay struct {
	outbox   Outbox
	cl       *kgo.Client
	codec    *schemas.Codec
	log      *slog.Logger
	m        *Metrics
	target   string
	wake     chan struct{}
	interval time.Duration
	outcomes *schemas.TopicCodec
	dlq      *schemas.TopicCodec
}

func (r *relay) bind(ctx context.Context) error {
	var err error
	if r.outcomes, err = r.codec.Bind(ctx, schemas.TopicOutcomes); err != nil {
		return fmt.Errorf("registering the outcome schemas: %w", err)
	}
	if r.dlq, err = r.codec.Bind(ctx, schemas.TopicDLQ); err != nil {
		return fmt.Errorf("registering the DLQ schemas: %w", err)
	}
	return nil
}

func (r *relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *relay) run(ctx context.Context) {
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		for {
			n, err := r.once(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				r.m.Errors.WithLabelValues("outbox").Inc()
				r.log.Warn("publishing the outbox", "err", err)
				break
			}
			if n == 0 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// relayPage is the most outbox batches the relay publishes at once.
const relayPage = 8

// once publishes one page of the outbox and returns its size in batches.
func (r *relay) once(ctx context.Context) (int, error) {
	batches, err := r.outbox.Pending(ctx, relayPage)
	if err != nil || len(batches) == 0 {
		return 0, err
	}
	var recs []*kgo.Record
	var owner []int // batch index of each record
	rows := 0
	for bi := range batches {
		b := &batches[bi]
		prefix := r.target + "/" + strconv.FormatInt(b.ID, 10) + "/"
		for i := range b.Rows {
			o := &b.Rows[i]
			o.AppliedAt = b.CreatedAt
			rec, err := r.outcomeRecord(o)
			if err != nil {
				return 0, err
			}
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderOutboxID, Value: []byte(prefix + strconv.Itoa(i))})
			recs, owner = append(recs, rec), append(owner, bi)
			if o.DLQ != nil {
				d, err := r.dlqRecord(o)
				if err != nil {
					return 0, err
				}
				recs, owner = append(recs, d), append(owner, bi)
			}
		}
		rows += len(b.Rows)
	}
	// A batch is published when all its records are: a partial failure (a
	// partition briefly without a leader) publishes again only the batches
	// it hit, not the whole page.
	results := r.cl.ProduceSync(ctx, recs...)
	failed := make([]bool, len(batches))
	var firstErr error
	for i, res := range results {
		if res.Err != nil {
			failed[owner[i]] = true
			if firstErr == nil {
				firstErr = res.Err
			}
		}
	}
	ids := make([]int64, 0, len(batches))
	published := 0
	for i := range batches {
		if !failed[i] {
			ids = append(ids, batches[i].ID)
			published += len(batches[i].Rows)
		}
	}
	if len(ids) > 0 {
		if err := r.outbox.Published(ctx, ids); err != nil {
			return 0, err
		}
		r.m.Published.Add(float64(published))
	}
	if firstErr != nil {
		return 0, fmt.Errorf("producing outcome records: %d of %d outcomes published: %w", published, rows, firstErr)
	}
	return len(batches), nil
}

func (r *relay) outcomeRecord(o *OutboxRow) (*kgo.Record, error) {
	target := "DPS"
	if r.target == "apply-nomis" {
		target = "NOMIS"
	}
	if _, ok := resultIndex[o.Result]; !ok {
		return nil, fmt.Errorf("outcome of command %s: unknown result %q", o.CommandID, o.Result)
	}
	return &kgo.Record{Topic: r.outcomes.Topic,
		Key:   appendOutcomeKey(make([]byte, 0, 16+len(o.PrisonNumber)), r.outcomes.Key.ID(), o.PrisonNumber),
		Value: appendOutcomeValue(make([]byte, 0, 160), r.outcomes.Value.ID(), o, target)}, nil
}

func (r *relay) dlqRecord(o *OutboxRow) (*kgo.Record, error) {
	d := o.DLQ
	routing := d.Topic + "/" + strconv.Itoa(int(d.Partition))
	if d.AlertKey != nil {
		routing = *d.AlertKey
	}
	return r.dlq.Record(map[string]any{"routing_key": routing}, map[string]any{
		"topic":       d.Topic,
		"partition":   d.Partition,
		"offset":      d.Offset,
		"key":         schemas.OptBytes(d.Key),
		"value":       schemas.OptBytes(d.Value),
		"headers":     []any{},
		"stage":       r.target,
		"error":       d.Error,
		"error_kind":  d.ErrorKind,
		"attempt":     int32(1),
		"failed_at":   schemas.Timestamp(o.AppliedAt),
		"held":        d.HeldBehind != nil,
		"held_behind": schemas.OptString(d.HeldBehind),
		"alert_key":   schemas.OptString(d.AlertKey),
	})
}

// Transient reports whether err is worth retrying the same batch for: a
// serialization failure, a deadlock, a lost or refused connection, or an
// error that says so itself (a Transient() bool method: how a dialect
// other than PostgreSQL marks its driver's transient errors).
func Transient(err error) bool {
	var marked interface{ Transient() bool }
	if errors.As(err, &marked) {
		return marked.Transient()
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40001", "40P01", "57P01", "57P02", "57P03", "53300", "08000", "08003", "08006":
			return true
		}
		return false
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, context.DeadlineExceeded)
}
