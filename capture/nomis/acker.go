package nomis

import "sync"

// batchAck counts the acknowledgements of one batch's records. Produce
// callbacks call done from franz-go's goroutines; the capture loop calls
// add for each record, then seal, then waits on finished. A batch's journal
// rows may be deleted only when finished is closed and err is nil.
type batchAck struct {
	mu       sync.Mutex
	pending  int
	sealed   bool
	err      error // first produce error
	finished chan struct{}
}

func newBatchAck() *batchAck { return &batchAck{finished: make(chan struct{})} }

// add counts one record produced.
func (b *batchAck) add() {
	b.mu.Lock()
	b.pending++
	b.mu.Unlock()
}

// done counts one record acknowledged, or failed with err.
func (b *batchAck) done(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.pending--
	if err != nil && b.err == nil {
		b.err = err
	}
	b.finishLocked()
}

// seal marks the batch complete: no more add calls.
func (b *batchAck) seal() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	b.finishLocked()
}

func (b *batchAck) finishLocked() {
	if b.sealed && b.pending == 0 {
		select {
		case <-b.finished:
		default:
			close(b.finished)
		}
	}
}

// result returns the first produce error so far (all of them once finished
// is closed).
func (b *batchAck) result() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.err
}
