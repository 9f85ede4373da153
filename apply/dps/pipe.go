package dps

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/alertsync/alertsync/apply"
)

// pipe runs a batch's statements on its transaction. Deferred (the fast
// path), writes are queued and sent with the next read or at flush, in one
// round trip: a command costs about one round trip instead of one per
// statement; an error of a queued write surfaces at that send, not at the
// write, so the caller redoes the whole batch immediate. Immediate, every
// statement runs at once (the careful path, with a savepoint per command).
type pipe struct {
	tx       pgx.Tx
	deferred bool
	queued   *pgx.Batch
	outbox   []apply.OutboxRow // the outcomes of the batch, written before the commit
}

func newPipe(tx pgx.Tx, deferred bool) *pipe { return &pipe{tx: tx, deferred: deferred} }

// Exec runs or queues a statement; a queued one returns an empty tag.
func (p *pipe) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if !p.deferred {
		return p.tx.Exec(ctx, sql, args...)
	}
	if p.queued == nil {
		p.queued = &pgx.Batch{}
	}
	p.queued.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

// batch returns the queue of deferred writes (for a pipe that runs
// statements at once, a queue flush sends).
func (p *pipe) batch() *pgx.Batch {
	if p.queued == nil {
		p.queued = &pgx.Batch{}
	}
	return p.queued
}

// QueryRow sends the queued writes and the query together.
func (p *pipe) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	if p.queued == nil || p.queued.Len() == 0 {
		return p.tx.QueryRow(ctx, sql, args...)
	}
	b := p.queued
	p.queued = nil
	writes := b.Len()
	b.Queue(sql, args...)
	return &pipedRow{ctx: ctx, br: p.tx.SendBatch(ctx, b), writes: writes}
}

// Query sends the queued writes, then runs the query.
func (p *pipe) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if err := p.flush(ctx); err != nil {
		return nil, err
	}
	return p.tx.Query(ctx, sql, args...)
}

// flush sends the queued writes.
func (p *pipe) flush(ctx context.Context) error {
	if p.queued == nil || p.queued.Len() == 0 {
		return nil
	}
	b := p.queued
	p.queued = nil
	_, err := sendQueued(ctx, p.tx, b)
	return err
}

// flushLast sends the queued writes and returns the last one's result.
func (p *pipe) flushLast(ctx context.Context) (pgconn.CommandTag, error) {
	b := p.batch()
	p.queued = nil
	return sendQueued(ctx, p.tx, b)
}

// sendQueued sends b on tx, reads every result and returns the last one's;
// a failed write is a *queuedError.
func sendQueued(ctx context.Context, tx pgx.Tx, b *pgx.Batch) (pgconn.CommandTag, error) {
	br := tx.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	for range b.Len() {
		var err error
		if tag, err = br.Exec(); err != nil {
			_ = br.Close()
			return tag, &queuedError{err: err}
		}
	}
	return tag, br.Close()
}

// queuedError is the failure of a queued write: the batch cannot tell which
// command it belonged to, so it is redone immediate.
type queuedError struct{ err error }

func (e *queuedError) Error() string { return fmt.Sprintf("a queued write failed: %v", e.err) }
func (e *queuedError) Unwrap() error { return e.err }

type pipedRow struct {
	ctx    context.Context
	br     pgx.BatchResults
	writes int
}

func (r *pipedRow) Scan(dest ...any) error {
	for range r.writes {
		if _, err := r.br.Exec(); err != nil {
			_ = r.br.Close()
			return &queuedError{err: err}
		}
	}
	err := r.br.QueryRow().Scan(dest...)
	if cerr := r.br.Close(); cerr != nil && err == nil && !errors.Is(cerr, pgx.ErrNoRows) {
		err = cerr
	}
	return err
}
