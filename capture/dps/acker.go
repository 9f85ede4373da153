package dps

import (
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
)

// acker tracks, in commit order, which transactions Kafka has acknowledged
// completely, and so the LSN the capture may confirm to the server. Produce
// callbacks call done from franz-go's goroutines; the stream loop calls the
// rest. A transaction counts as acknowledged when it has committed and every
// record produced for it is acknowledged; the confirmable LSN is the end LSN
// of the newest such transaction with no unacknowledged one before it.
type acker struct {
	mu        sync.Mutex
	queue     []*txAck
	confirmed pglogrepl.LSN
	inFlight  int
	err       error         // first produce error
	signal    chan struct{} // receives (non-blocking) after each acknowledgement
	lastAck   time.Time     // last acknowledgement, or when records started waiting for one
}

type txAck struct {
	commitTime time.Time
	endLSN     pglogrepl.LSN
	committed  bool
	pending    int
}

func newAcker(start pglogrepl.LSN) *acker {
	return &acker{confirmed: start, signal: make(chan struct{}, 1)}
}

// begin opens a transaction.
func (a *acker) begin(commitTime time.Time) *txAck {
	t := &txAck{commitTime: commitTime}
	a.mu.Lock()
	a.queue = append(a.queue, t)
	a.mu.Unlock()
	return t
}

// add counts one record produced for t.
func (a *acker) add(t *txAck) {
	a.mu.Lock()
	t.pending++
	if a.inFlight == 0 {
		a.lastAck = time.Now()
	}
	a.inFlight++
	a.mu.Unlock()
}

// done counts one record of t as acknowledged, or failed with err.
func (a *acker) done(t *txAck, err error) {
	a.mu.Lock()
	t.pending--
	a.inFlight--
	a.lastAck = time.Now()
	if err != nil && a.err == nil {
		a.err = err
	}
	a.advance()
	a.mu.Unlock()
	select {
	case a.signal <- struct{}{}:
	default:
	}
}

// commit marks t committed at end; with no record pending it is confirmable at once.
func (a *acker) commit(t *txAck, end pglogrepl.LSN) {
	a.mu.Lock()
	t.committed, t.endLSN = true, end
	a.advance()
	a.mu.Unlock()
}

func (a *acker) advance() {
	if a.err != nil {
		return // never confirm past a failed record
	}
	n := 0
	for _, t := range a.queue {
		if !t.committed || t.pending > 0 {
			break
		}
		if t.endLSN > a.confirmed {
			a.confirmed = t.endLSN
		}
		n++
	}
	if n > 0 {
		clear(a.queue[:n])
		a.queue = a.queue[n:]
	}
}

// state returns the confirmable LSN, the records in flight, whether nothing
// at all is outstanding (no open or unacknowledged transaction), the commit
// time of the oldest outstanding transaction, and the first produce error.
func (a *acker) state() (confirmed pglogrepl.LSN, inFlight int, idle bool, oldest time.Time, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.queue) > 0 {
		oldest = a.queue[0].commitTime
	}
	return a.confirmed, a.inFlight, len(a.queue) == 0, oldest, a.err
}

// stalled reports how long records have waited with no acknowledgement at
// all; 0 when none is in flight.
func (a *acker) stalled() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inFlight == 0 {
		return 0
	}
	return time.Since(a.lastAck)
}

// skipTo raises the confirmable LSN to lsn when nothing is outstanding: WAL
// the server reports as sent that held nothing for this slot.
func (a *acker) skipTo(lsn pglogrepl.LSN) {
	a.mu.Lock()
	if len(a.queue) == 0 && a.err == nil && lsn > a.confirmed {
		a.confirmed = lsn
	}
	a.mu.Unlock()
}
