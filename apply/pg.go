package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/transform/rules"
)

// PGBookkeeping is the sync's bookkeeping in a PostgreSQL target (DPS, the
// NOMIS stand-in): the fenced consumer offsets (Claim, CommitFenced) and
// the outbox of outcome batches (WriteOutbox, Outbox). The two targets name
// their tables differently.
type PGBookkeeping struct {
	Pool *pgxpool.Pool
	// Offsets and Outbox are the tables' qualified names.
	Offsets, Outbox string
}

// Claim implements Store.Claim: it bumps the fence epochs of partitions
// (creating their rows at epoch 1) and returns their fences; a partition
// with no stored offset yet starts where the group's reset policy says
// (Next -1).
func (b *PGBookkeeping) Claim(ctx context.Context, group, topic string, partitions []int32, owner string) (map[int32]Fence, error) {
	rows, err := b.Pool.Query(ctx, `
		INSERT INTO `+b.Offsets+` AS o (consumer_group, topic, kafka_partition, next_offset, fence_epoch, fence_owner)
		SELECT $1, $2, p, 0, 1, $3 FROM unnest($4::int[]) AS p
		ON CONFLICT (consumer_group, topic, kafka_partition)
		DO UPDATE SET fence_epoch = o.fence_epoch + 1, fence_owner = EXCLUDED.fence_owner, updated_at = now()
		RETURNING kafka_partition, next_offset, fence_epoch, (xmax = 0)`, group, topic, owner, partitions)
	if err != nil {
		return nil, fmt.Errorf("claiming offsets: %w", err)
	}
	defer rows.Close()
	out := map[int32]Fence{}
	for rows.Next() {
		var (
			p        int32
			next, ep int64
			inserted bool
		)
		if err := rows.Scan(&p, &next, &ep, &inserted); err != nil {
			return nil, fmt.Errorf("claiming offsets: %w", err)
		}
		if inserted {
			next = -1
		}
		out[p] = Fence{Group: group, Topic: topic, Partition: p, Epoch: ep, Next: next}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claiming offsets: %w", err)
	}
	return out, nil
}

// outboxInsert is the statement writing one outbox batch.
func (b *PGBookkeeping) outboxInsert() string {
	return "INSERT INTO " + b.Outbox + " (commands, payload) VALUES ($1, $2)"
}

// WriteOutbox writes the outcomes of a transaction's batch to the outbox,
// as one row, in tx. Nothing is written for no rows.
func (b *PGBookkeeping) WriteOutbox(ctx context.Context, tx PGTx, rows []OutboxRow) error {
	if len(rows) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, b.outboxInsert(), len(rows), EncodeOutbox(rows)); err != nil {
		return fmt.Errorf("writing %d outcomes to the outbox: %w", len(rows), err)
	}
	return nil
}

// QueueOutbox queues WriteOutbox's statement on batch.
func (b *PGBookkeeping) QueueOutbox(batch *pgx.Batch, rows []OutboxRow) {
	if len(rows) > 0 {
		batch.Queue(b.outboxInsert(), len(rows), EncodeOutbox(rows))
	}
}

// Pending implements Outbox.
func (b *PGBookkeeping) Pending(ctx context.Context, limit int) ([]OutboxBatch, error) {
	rows, err := b.Pool.Query(ctx, "SELECT id, created_at, payload FROM "+b.Outbox+" ORDER BY id LIMIT $1", limit)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxBatch
	for rows.Next() {
		var (
			ob      OutboxBatch
			payload []byte
		)
		if err := rows.Scan(&ob.ID, &ob.CreatedAt, &payload); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		if ob.Rows, err = DecodeOutbox(payload); err != nil {
			return nil, fmt.Errorf("reading outbox batch %d: %w", ob.ID, err)
		}
		out = append(out, ob)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	return out, nil
}

// Published implements Outbox.
func (b *PGBookkeeping) Published(ctx context.Context, ids []int64) error {
	if _, err := b.Pool.Exec(ctx, "DELETE FROM "+b.Outbox+" WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("removing published outcome batches: %w", err)
	}
	return nil
}

// PreparePostgres applies the migration set named set through db (closed
// by the caller) and checks that pool's server tracks commit timestamps,
// which conflict decisions need; what names the database in errors.
func PreparePostgres(ctx context.Context, db *sql.DB, pool *pgxpool.Pool, set, what string) error {
	s, err := migrate.Named(set)
	if err != nil {
		return err
	}
	if _, err := migrate.Up(ctx, db, s, migrate.Latest); err != nil {
		return &FatalError{Err: fmt.Errorf("migrating schema alertsync: %w", err)}
	}
	var on string
	if err := pool.QueryRow(ctx, "SELECT current_setting('track_commit_timestamp')").Scan(&on); err != nil {
		return fmt.Errorf("reading track_commit_timestamp: %w", err)
	}
	if on != "on" {
		return &FatalError{Err: errors.New("track_commit_timestamp is off on " + what +
			": conflicts are decided by commit time; set track_commit_timestamp = on and restart PostgreSQL")}
	}
	return nil
}

// SameText compares texts as both stores treat them: empty is NULL
// (Oracle stores ” as NULL).
func SameText(a, b *string) bool {
	an, bn := a == nil || *a == "", b == nil || *b == ""
	if an || bn {
		return an == bn
	}
	return *a == *b
}

// SameDate compares optional dates.
func SameDate(a, b *rules.Date) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// DateArg is d as a SQL date literal argument, nil for nil.
func DateArg(d *rules.Date) *string {
	if d == nil {
		return nil
	}
	s := d.String()
	return &s
}

// AtOrBefore reports whether position p is at or before last (nil: none
// applied yet): a command at such a position is stale or repeated.
func AtOrBefore(p rules.Position, last *rules.Position) bool {
	if last == nil {
		return false
	}
	return p.Commit < last.Commit || (p.Commit == last.Commit && p.Change <= last.Change)
}

// CommitFenced stores next as f's partition's next offset in the same
// transaction, if f still holds (ErrFenced otherwise, nothing committed),
// and commits. The failure points apply.before_commit and
// apply.after_commit are around the commit.
func (b *PGBookkeeping) CommitFenced(ctx context.Context, tx PGTx, f Fence, next int64) error {
	tag, err := tx.Exec(ctx, b.fenceSQL(), f.Group, f.Topic, f.Partition, f.Epoch, next)
	if err != nil {
		return fmt.Errorf("storing the consumed offset: %w", err)
	}
	return CommitChecked(ctx, tx, tag)
}

// PGTx is what the bookkeeping needs of a transaction (a pgx.Tx has it).
type PGTx interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Commit(ctx context.Context) error
}

func (b *PGBookkeeping) fenceSQL() string {
	return `UPDATE ` + b.Offsets + ` SET next_offset = $5, updated_at = now()
		WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 AND fence_epoch = $4`
}

// QueueFence queues CommitFenced's offset write on batch; its result goes
// to CommitChecked.
func (b *PGBookkeeping) QueueFence(batch *pgx.Batch, f Fence, next int64) {
	batch.Queue(b.fenceSQL(), f.Group, f.Topic, f.Partition, f.Epoch, next)
}

// CommitChecked commits tx if tag, the result of the offset write, shows
// the fence held (ErrFenced otherwise, nothing committed), with the
// failure points apply.before_commit and apply.after_commit around the
// commit.
func CommitChecked(ctx context.Context, tx PGTx, tag pgconn.CommandTag) error {
	if tag.RowsAffected() != 1 {
		return ErrFenced
	}
	failpoint.Hit("apply.before_commit")
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing: %w", err)
	}
	failpoint.Hit("apply.after_commit")
	return nil
}

// Refusal is a command the target cannot take (no current booking, an
// unknown code, a value the database refuses): FAILED with Reason, its
// DLQ entry, and a hold on its alert. Msg names keys and codes, never
// alert text.
type Refusal struct{ Reason, Msg string }

func (r *Refusal) Error() string { return r.Reason + ": " + r.Msg }

// RefusedByDB reports whether err is a data exception or an integrity
// violation from PostgreSQL that a retry cannot cure: the target refuses
// the command, which is never a reason to stop the pipeline.
func RefusedByDB(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")) && !Transient(err)
}

// AsRefusal returns err as a refusal: a *Refusal, or one made of a
// database refusal (RefusedByDB, reason refused_<SQLSTATE>); false for
// anything else.
func AsRefusal(err error) (*Refusal, bool) {
	var ref *Refusal
	if errors.As(err, &ref) {
		return ref, true
	}
	var pe *pgconn.PgError
	if RefusedByDB(err) && errors.As(err, &pe) {
		return &Refusal{Reason: "refused_" + pe.Code, Msg: pe.Message}, true
	}
	return nil, false
}
