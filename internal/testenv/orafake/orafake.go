// Package orafake is a recording database/sql driver for testing code that
// talks to Oracle through godror where no Oracle server can run: every
// statement is recorded with its arguments (the text of godror.Lob
// arguments read out) and the transaction it ran in, and answered with
// canned columns, rows, out-bind values, rows affected or an error. Check
// compares a recorded statement with the constants of the dialect's source
// file (Statements): a statement built ad hoc, PostgreSQL $n placeholders,
// placeholders that do not match the arguments (positional :1..:n each
// once and in order, or :name matching sql.Named arguments) and a select
// list wider or narrower than the canned answer are all reported.
//
// What it cannot show is that Oracle accepts the SQL.
package orafake

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sync"

	"github.com/godror/godror"
)

// Call is one statement, or transaction event, the code under test ran.
type Call struct {
	// Kind is "query", "exec", "begin", "commit" or "rollback".
	Kind string
	// Query is the statement text (empty for transaction events).
	Query string
	// Args are the statement's arguments as the driver got them.
	Args []driver.NamedValue
	// Lobs are the texts of the godror.Lob arguments, in order.
	Lobs [][]byte
	// Cols is the canned answer's column count (queries).
	Cols int
	// Fails is true when the answer was an error.
	Fails bool
	// Tx numbers the transaction the call ran in, from 1 in order of
	// BeginTx; 0 outside a transaction.
	Tx int
	// TxOptions are the options a "begin" was given (read-only, isolation).
	TxOptions driver.TxOptions
}

// Answer is the canned answer to one statement.
type Answer struct {
	// Cols and Rows are a query's result.
	Cols []string
	Rows [][]driver.Value
	// Outs are the values given to the sql.Out arguments, in order (a
	// pointer destination of a compatible kind).
	Outs []any
	// Affected is an exec's rows affected; nil: 1.
	Affected *int64
	// Err is returned instead of a result.
	Err error
}

// Rows returns a pointer to n, for Answer.Affected.
func Rows(n int64) *int64 { return &n }

// Fake is a driver.Connector recording every statement. The zero value is
// not usable: use New.
type Fake struct {
	mu      sync.Mutex
	answers map[string][]Answer
	calls   []Call
	txs     int
	onCall  func(Call)
}

// New returns a fake database with no canned answers: an exec without one
// succeeds with 1 row affected, a query without one fails.
func New() *Fake { return &Fake{answers: map[string][]Answer{}} }

// DB returns a database/sql handle on f (closed by the caller).
func (f *Fake) DB() *sql.DB { return sql.OpenDB(f) }

// Answer cans the answers to statement q: each call takes the next one,
// the last one answers every call after it.
func (f *Fake) Answer(q string, as ...Answer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answers[q] = append([]Answer(nil), as...)
}

// OnCall sets fn to run after each statement ("query" or "exec") is
// recorded and its answer taken, before the answer is returned, outside
// the fake's lock: fn may call Answer, e.g. to answer a later read with
// what an exec wrote. Nil (the default) runs nothing.
func (f *Fake) OnCall(fn func(Call)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.onCall = fn
}

// Calls returns what ran so far, in order.
func (f *Fake) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Call(nil), f.calls...)
}

// Reset forgets the calls recorded so far (not the answers).
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

// Connect implements driver.Connector.
func (f *Fake) Connect(context.Context) (driver.Conn, error) { return &conn{f: f}, nil }

// Driver implements driver.Connector.
func (f *Fake) Driver() driver.Driver { return nil }

type conn struct {
	f  *Fake
	tx int
}

func (c *conn) Prepare(string) (driver.Stmt, error) {
	return nil, errors.New("orafake: prepare not supported: use ExecContext/QueryContext")
}

func (c *conn) Close() error { return nil }

func (c *conn) Begin() (driver.Tx, error) { return c.BeginTx(context.Background(), driver.TxOptions{}) }

func (c *conn) BeginTx(_ context.Context, o driver.TxOptions) (driver.Tx, error) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	c.f.txs++
	c.tx = c.f.txs
	c.f.calls = append(c.f.calls, Call{Kind: "begin", Tx: c.tx, TxOptions: o})
	return tx{c}, nil
}

// CheckNamedValue accepts every argument as it is (sql.Out, godror.Lob),
// as godror does.
func (c *conn) CheckNamedValue(*driver.NamedValue) error { return nil }

func (c *conn) record(kind, q string, args []driver.NamedValue) (Answer, error) {
	call := Call{Kind: kind, Query: q, Args: append([]driver.NamedValue(nil), args...), Tx: c.tx}
	for _, a := range args {
		if l, ok := a.Value.(godror.Lob); ok {
			b, err := io.ReadAll(l.Reader)
			if err != nil {
				return Answer{}, err
			}
			call.Lobs = append(call.Lobs, b)
		}
	}
	a, ok, onCall := c.take(&call)
	if onCall != nil {
		onCall(call)
	}
	if !ok && kind == "query" {
		return Answer{}, fmt.Errorf("orafake: no canned answer for %.60q", q)
	}
	if a.Err != nil {
		return Answer{}, a.Err
	}
	outs := a.Outs
	for _, arg := range args {
		out, ok := arg.Value.(sql.Out)
		if !ok {
			continue
		}
		if len(outs) == 0 {
			continue
		}
		if err := setOut(out.Dest, outs[0]); err != nil {
			return Answer{}, err
		}
		outs = outs[1:]
	}
	return a, nil
}

// take takes the next canned answer to call's statement (ok is false when
// there is none), notes it in call and records call.
func (c *conn) take(call *Call) (a Answer, ok bool, onCall func(Call)) {
	c.f.mu.Lock()
	defer c.f.mu.Unlock()
	queue, ok := c.f.answers[call.Query]
	if ok && len(queue) > 0 {
		a = queue[0]
		if len(queue) > 1 {
			c.f.answers[call.Query] = queue[1:]
		}
	}
	call.Cols, call.Fails = len(a.Cols), a.Err != nil
	c.f.calls = append(c.f.calls, *call)
	return a, ok, c.f.onCall
}

// setOut stores v in the out bind destination dest.
func setOut(dest, v any) error {
	d := reflect.ValueOf(dest)
	if d.Kind() != reflect.Pointer || d.IsNil() {
		return fmt.Errorf("orafake: out bind destination %T is not a pointer", dest)
	}
	val := reflect.ValueOf(v)
	if !val.Type().ConvertibleTo(d.Elem().Type()) {
		return fmt.Errorf("orafake: out value %T does not fit destination %T", v, dest)
	}
	d.Elem().Set(val.Convert(d.Elem().Type()))
	return nil
}

func (c *conn) ExecContext(_ context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	a, err := c.record("exec", q, args)
	if err != nil {
		return nil, err
	}
	if a.Affected != nil {
		return driver.RowsAffected(*a.Affected), nil
	}
	return driver.RowsAffected(1), nil
}

func (c *conn) QueryContext(_ context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	a, err := c.record("query", q, args)
	if err != nil {
		return nil, err
	}
	return &rows{cols: a.Cols, rows: a.Rows}, nil
}

type tx struct{ c *conn }

func (t tx) end(kind string) error {
	t.c.f.mu.Lock()
	defer t.c.f.mu.Unlock()
	t.c.f.calls = append(t.c.f.calls, Call{Kind: kind, Tx: t.c.tx})
	t.c.tx = 0
	return nil
}

func (t tx) Commit() error   { return t.end("commit") }
func (t tx) Rollback() error { return t.end("rollback") }

type rows struct {
	cols []string
	rows [][]driver.Value
}

func (r *rows) Columns() []string { return r.cols }
func (r *rows) Close() error      { return nil }
func (r *rows) Next(dest []driver.Value) error {
	if len(r.rows) == 0 {
		return io.EOF
	}
	copy(dest, r.rows[0])
	r.rows = r.rows[1:]
	return nil
}

// OraErr stands in for *godror.OraErr (which has no exported constructor)
// through the same Code method.
type OraErr int

func (e OraErr) Error() string { return fmt.Sprintf("ORA-%05d: orafake", int(e)) }

// Code is the ORA- code.
func (e OraErr) Code() int { return int(e) }
