// Package runtest runs a component's Run function in a test, in the
// background, and stops it.
package runtest

import (
	"context"
	"testing"
	"time"
)

// Running is a Run function running in the background.
type Running struct {
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// Start runs run in the background with a context Halt cancels; the test's
// cleanup halts it.
func Start(t testing.TB, run func(context.Context) error) *Running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &Running{stop: cancel, done: make(chan struct{})}
	go func() { r.err = run(ctx); close(r.done) }()
	t.Cleanup(func() { _ = r.Halt(t) })
	return r
}

// Done is closed when Run has returned; Err then holds its error.
func (r *Running) Done() <-chan struct{} { return r.done }

// Err is Run's error, once Done is closed.
func (r *Running) Err() error { return r.err }

// Halt cancels Run's context and returns its error; it fails the test when
// Run does not return within 30 seconds.
func (r *Running) Halt(t testing.TB) error {
	t.Helper()
	r.stop()
	select {
	case <-r.done:
		return r.err
	case <-time.After(30 * time.Second):
		t.Fatal("the component did not stop within 30s")
		return nil
	}
}
