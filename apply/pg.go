package apply

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/alertsync/alertsync/internal/failpoint"
	"github.com/alertsync/alertsync/internal/migrate"
	"github.com/alertsync/alertsync/transform/rules"
)

// PGBookkeeping is the sync's bookkeeping in a PostgreSQL target (DPS, the
// NOMIS stand-in): the fenced consumer offsets (Claim) and the outcome
// outbox (Outbox). The two targets name a few things differently.
type PGBookkeeping struct {
	Pool *pgxpool.Pool
	// Offsets and Outbox are the tables' qualified names.
	Offsets, Outbox string
	// BookingColumn and SeqColumn are the outbox's NOMIS key columns.
	BookingColumn, SeqColumn string
	// Origin is the side a row without origin_side came from.
	Origin rules.Side
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

// Pending implements Outbox.
func (b *PGBookkeeping) Pending(ctx context.Context, limit int) ([]OutboxRow, error) {
	rows, err := b.Pool.Query(ctx, `SELECT id, command_id, outcome, reason, dps_alert_id::text, coalesce(prison_number, ''),
			`+b.BookingColumn+`, `+b.SeqColumn+`, origin_side, coalesce(source_commit_pos, 0), coalesce(source_change_pos, 0),
			source_commit_time, created_at,
			dlq_topic, dlq_partition, dlq_offset, dlq_key, dlq_value, dlq_error_kind, dlq_error, dlq_held_behind, alert_key
		  FROM `+b.Outbox+` WHERE published_at IS NULL ORDER BY id LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("reading the outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxRow
	for rows.Next() {
		var (
			r                   OutboxRow
			result              string
			origin              *string
			commitTime          *time.Time
			dTopic, dKind, dErr *string
			dPart               *int32
			dOff                *int64
			dKey, dVal          []byte
			held, ak            *string
		)
		if err := rows.Scan(&r.ID, &r.CommandID, &result, &r.Reason, &r.DPSAlertID, &r.PrisonNumber, &r.NOMISBookingID, &r.NOMISAlertSeq,
			&origin, &r.SourcePosition.Commit, &r.SourcePosition.Change, &commitTime, &r.AppliedAt,
			&dTopic, &dPart, &dOff, &dKey, &dVal, &dKind, &dErr, &held, &ak); err != nil {
			return nil, fmt.Errorf("reading the outbox: %w", err)
		}
		r.Result = Result(result)
		switch {
		case origin == nil:
			r.Origin = b.Origin
		case *origin == "DPS":
			r.Origin = rules.SideDPS
		default:
			r.Origin = rules.SideNOMIS
		}
		if commitTime != nil {
			r.SourceCommitTime = *commitTime
		}
		if dTopic != nil {
			r.DLQ = &DLQEntry{Topic: *dTopic, Key: dKey, Value: dVal, HeldBehind: held, AlertKey: ak}
			if dPart != nil {
				r.DLQ.Partition = *dPart
			}
			if dOff != nil {
				r.DLQ.Offset = *dOff
			}
			if dKind != nil {
				r.DLQ.ErrorKind = *dKind
			}
			if dErr != nil {
				r.DLQ.Error = *dErr
			}
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Published implements Outbox.
func (b *PGBookkeeping) Published(ctx context.Context, ids []int64) error {
	if _, err := b.Pool.Exec(ctx, "UPDATE "+b.Outbox+" SET published_at = now() WHERE id = ANY($1)", ids); err != nil {
		return fmt.Errorf("marking outcomes published: %w", err)
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
func (b *PGBookkeeping) CommitFenced(ctx context.Context, tx pgx.Tx, f Fence, next int64) error {
	tag, err := tx.Exec(ctx, `UPDATE `+b.Offsets+` SET next_offset = $5, updated_at = now()
		WHERE consumer_group = $1 AND topic = $2 AND kafka_partition = $3 AND fence_epoch = $4`,
		f.Group, f.Topic, f.Partition, f.Epoch, next)
	if err != nil {
		return fmt.Errorf("storing the consumed offset: %w", err)
	}
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
