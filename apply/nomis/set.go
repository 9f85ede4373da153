package nomis

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/alertsync/alertsync/apply"
	"github.com/alertsync/alertsync/transform/rules"
)

// The set path: a batch is read in one round trip (holds, the alerts'
// mappings, the rows they and the commands name, the current bookings of the
// prisoners a create may need, the uncached alert codes), decided in memory
// command by command with the rules of the statement path (writes.go), and
// written in one more round trip: one multi-row statement per table and
// NOMIS user. A command refused by those rules (unknown code, no current
// booking, no after-image) fails alone, as on the statement path, with
// nothing of it kept. Anything rare (a create whose booking was not read, a
// mapping key taken from an alert this batch already changed, a sequence a
// NOMIS user took meanwhile, a write the database refuses) makes the batch
// start again on the statement path. Only dialects whose transactions
// implement setTx have it: the stand-in; Oracle goes command by command.

// errStatementPath makes the store redo a batch on the statement path: the
// set path met a case it leaves to it.
var errStatementPath = errors.New("a case for the statement path")

// setTx is a writeTx that can read and write a batch at once.
type setTx interface {
	// readSet reads and locks what q names (see setQuery) in one round
	// trip.
	readSet(ctx context.Context, q setQuery) (*setRead, error)
	// writeSet writes a decided batch and stores w.next as w.fence's
	// partition's next offset, in one round trip; errStatementPath when an
	// insert found its ALERT_SEQ taken.
	writeSet(ctx context.Context, w *setWrites) error
	// commitSet commits after writeSet: apply.ErrFenced (nothing committed)
	// when the fence did not hold; the failure points of commitFenced.
	commitSet(ctx context.Context) error
}

// setQuery is what a batch reads.
type setQuery struct {
	holdKeys  []string   // holds on these keys
	dpsIDs    []string   // the mapping rows of these DPS alerts (locked) and their NOMIS rows
	keys      []nomisKey // further NOMIS keys: their rows and the DPS alert mapped to each
	prisoners []string   // current bookings (locked), with the next ALERT_SEQ of each
	codes     []string   // alert codes whose REFERENCE_CODES parent is not cached
}

// setRead is what readSet found.
type setRead struct {
	holds    map[string]string      // hold key → its first command
	links    map[string]*link       // by DPS id
	owners   map[nomisKey]string    // the DPS alert a mapping row (deleted or not) gives each key read
	rows     map[nomisKey]*row      // every key read, and every mapped key: nil when NOMIS has no row
	bookings map[string]*setBooking // by prison number: nil when the prisoner has no current booking
	codes    map[string]string      // the codes asked that NOMIS has → parent ("": NULL)
}

// setBooking is a current booking read for creates: next is the ALERT_SEQ
// the next insert on it takes (1 + the highest in OFFENDER_ALERTS or the
// mapping when read).
type setBooking struct {
	book int64
	root *int64
	next int32
}

// setRow is a NOMIS row as the batch leaves it.
type setRow struct {
	cur      *row       // nil: no row
	inserted *insertion // the row is new: what its insert writes (the state at creation)
	written  bool       // this batch changes the row (insert, update or delete)
	typ      string     // ALERT_TYPE of the last write
	user     string     // the NOMIS user of the last write
	modified bool       // updated after this batch inserted it
}

// setMap is a mapping row as the batch leaves it.
type setMap struct {
	key     nomisKey
	pos     *rules.Position
	deleted bool
	kind    string // the mapping type of a row this batch adds
	number  string
}

// setWrites is a decided batch.
type setWrites struct {
	rows      map[nomisKey]*setRow // the rows written (written true)
	order     []nomisKey           // rows in the order they were first written
	maps      map[string]*setMap   // the mapping rows written
	mapOrder  []string
	releases  []release // mapping rows removed from a key, before the mapping is written
	conflicts []conflict
	holds     []hold
	heldCount map[string]int
	outbox    []apply.OutboxRow
	fence     apply.Fence
	next      int64
}

// release removes the mapping rows of DPS alerts other than dpsID from key.
type release struct {
	key   nomisKey
	dpsID string
}

// setPlan is the in-memory state of a batch being decided.
type setPlan struct {
	s     *store
	read  *setRead
	views map[string]dpsView
	rows  map[nomisKey]*setRow
	maps  map[string]*setMap
	// owners is read.owners as the batch changes the mapping.
	owners map[nomisKey]string
	w      setWrites
	undo   []func() // undoes the current command's changes (a refusal)
}

// applySet decides and writes cmds on the set path of tx.
func (s *store) applySet(ctx context.Context, tx setTx, f apply.Fence, cmds []apply.Cmd, next int64, views map[string]dpsView) ([]apply.Outcome, error) {
	read, err := tx.readSet(ctx, s.setQuery(cmds, views))
	if err != nil {
		return nil, err
	}
	for code, parent := range read.codes {
		s.cacheParent(code, parent)
	}
	p := &setPlan{s: s, read: read, views: views, rows: map[nomisKey]*setRow{}, maps: map[string]*setMap{},
		owners: make(map[nomisKey]string, len(read.owners))}
	for k, id := range read.owners {
		p.owners[k] = id
	}
	p.w.heldCount, p.w.fence, p.w.next = map[string]int{}, f, next
	p.w.outbox = make([]apply.OutboxRow, 0, len(cmds))
	outs := make([]apply.Outcome, 0, len(cmds))
	for i := range cmds {
		o, err := p.one(&cmds[i])
		if err != nil {
			return nil, err
		}
		outs = append(outs, o)
	}
	if err := p.finish(); err != nil {
		return nil, err
	}
	if err := tx.writeSet(ctx, &p.w); err != nil {
		return nil, err
	}
	if err := tx.commitSet(ctx); err != nil {
		return nil, err
	}
	return outs, nil
}

// setQuery is what the batch's well-formed commands need read.
func (s *store) setQuery(cmds []apply.Cmd, views map[string]dpsView) setQuery {
	var q setQuery
	seenID, seenKey, seenNumber, seenCode := map[string]bool{}, map[nomisKey]bool{}, map[string]bool{}, map[string]bool{}
	addKey := func(k nomisKey) {
		if !seenKey[k] {
			seenKey[k] = true
			q.keys = append(q.keys, k)
		}
	}
	for i := range cmds {
		c := &cmds[i]
		if c.Err != nil || malformed(&c.Command) != nil {
			continue
		}
		id := *c.DPSAlertID
		if !seenID[id] {
			seenID[id] = true
			q.dpsIDs = append(q.dpsIDs, id)
			q.holdKeys = append(q.holdKeys, holdKey(c))
		}
		if c.NOMISBookingID != nil && c.NOMISAlertSeq != nil {
			addKey(nomisKey{book: *c.NOMISBookingID, seq: *c.NOMISAlertSeq})
		}
		if v := views[id]; v.key != nil {
			addKey(*v.key)
		}
		if c.Kind == rules.KindUpsert && c.Before == nil && !seenNumber[c.PrisonNumber] {
			seenNumber[c.PrisonNumber] = true
			q.prisoners = append(q.prisoners, c.PrisonNumber)
		}
		if c.After != nil && !seenCode[c.After.Code] {
			seenCode[c.After.Code] = true
			if _, ok := s.cachedParent(c.After.Code); !ok {
				q.codes = append(q.codes, c.After.Code)
			}
		}
	}
	return q
}

// one decides one command, as store.one does on the statement path.
func (p *setPlan) one(c *apply.Cmd) (apply.Outcome, error) {
	key := holdKey(c)
	if c.Err != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: apply.ReasonUndecodable}}
		p.w.outbox = append(p.w.outbox, outboxRow(c, r, &apply.DLQReason{Kind: "decode", Error: c.Err.Error()}))
		return r.Outcome, nil
	}
	if ref := malformed(&c.Command); ref != nil {
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
		p.w.outbox = append(p.w.outbox, outboxRow(c, r, &apply.DLQReason{Kind: "refused", Error: ref.Error()}))
		return r.Outcome, nil
	}
	if first, held := p.read.holds[key]; held {
		p.w.heldCount[key]++
		r := result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Skipped, Reason: apply.ReasonHeld}}
		p.w.outbox = append(p.w.outbox, outboxRow(c, r, &apply.DLQReason{Kind: "held", Error: "held behind command " + first, HeldBehind: &first}))
		return r.Outcome, nil
	}
	p.undo = p.undo[:0]
	var (
		r   result
		err error
	)
	side := p.views[*c.DPSAlertID]
	if c.Kind == rules.KindUpsert {
		r, err = upsert(p, &c.Command, side)
	} else {
		r, err = remove(p, &c.Command, side)
	}
	if err == nil {
		r.CommandID = c.ID
		p.w.outbox = append(p.w.outbox, outboxRow(c, r, nil))
		return r.Outcome, nil
	}
	ref, ok := apply.AsRefusal(err)
	if !ok {
		return apply.Outcome{}, err
	}
	for i := len(p.undo) - 1; i >= 0; i-- {
		p.undo[i]()
	}
	r = result{Outcome: apply.Outcome{CommandID: c.ID, Result: apply.Failed, Reason: ref.Reason}}
	row := outboxRow(c, r, &apply.DLQReason{Kind: "refused", Error: ref.Error()})
	p.w.outbox = append(p.w.outbox, row)
	first := fit(row.CommandID, 64)
	p.read.holds[key] = first
	p.w.holds = append(p.w.holds, hold{key: key, prisonNumber: fit(c.PrisonNumber, 10), firstCommand: first, reason: ref.Reason})
	return r.Outcome, nil
}

// link is the command's alert's mapping row as the batch has it (a copy;
// nil: none).
func (p *setPlan) link(id string) *link {
	if m := p.maps[id]; m != nil {
		return &link{key: m.key, pos: m.pos, deleted: m.deleted, mapped: true}
	}
	if l := p.read.links[id]; l != nil {
		c := *l
		return &c
	}
	return nil
}

// row is the row at k as the batch has it (nil: none); errStatementPath
// when k was not read.
func (p *setPlan) row(k nomisKey) (*row, error) {
	if r, ok := p.rows[k]; ok {
		return r.cur, nil
	}
	r, ok := p.read.rows[k]
	if !ok {
		return nil, fmt.Errorf("%w: NOMIS key %d/%d not read", errStatementPath, k.book, k.seq)
	}
	return r, nil
}

// lookup is store.lookup in memory: resolve over the batch (p is its
// alerts).
func (p *setPlan) lookup(c *rules.Command, side dpsView) (*link, *row, error) {
	return resolve(p, c, p.link(*c.DPSAlertID), side)
}

// keyMapped is writeTx.keyMapped in memory (every key a command may name
// was read).
func (p *setPlan) keyMapped(k nomisKey) (bool, error) {
	_, ok := p.owners[k]
	return ok, nil
}

// release is writeTx.releaseKey in memory: the mapping row of another DPS
// alert holding k is removed. One this batch has changed is left to the
// statement path.
func (p *setPlan) release(k nomisKey, id string) error {
	other, ok := p.owners[k]
	if !ok || other == id {
		return nil
	}
	if p.maps[other] != nil {
		return fmt.Errorf("%w: NOMIS key %d/%d taken from alert %s, which the batch changed", errStatementPath, k.book, k.seq, other)
	}
	p.setOwner(k, "")
	old := p.read.links[other]
	delete(p.read.links, other)
	n := len(p.w.releases)
	p.w.releases = append(p.w.releases, release{key: k, dpsID: id})
	p.undo = append(p.undo, func() {
		p.w.releases = p.w.releases[:n]
		if old != nil {
			p.read.links[other] = old
		}
	})
	return nil
}

// setOwner makes id the DPS alert mapped to k ("": none), undoably.
func (p *setPlan) setOwner(k nomisKey, id string) {
	old, had := p.owners[k]
	if id == "" {
		delete(p.owners, k)
	} else {
		p.owners[k] = id
	}
	p.undo = append(p.undo, func() {
		if had {
			p.owners[k] = old
		} else {
			delete(p.owners, k)
		}
	})
}

// setRowAt makes sr the batch's row at k, undoably.
func (p *setPlan) setRowAt(k nomisKey, sr *setRow) {
	old, had := p.rows[k]
	p.rows[k] = sr
	first := !had || !old.written
	if first && sr.written {
		p.w.order = append(p.w.order, k)
	}
	n := len(p.w.order)
	p.undo = append(p.undo, func() {
		if first && sr.written {
			p.w.order = p.w.order[:n-1]
		}
		if had {
			p.rows[k] = old
		} else {
			delete(p.rows, k)
		}
	})
}

// decide is store.decide in memory.
func (p *setPlan) decide(c *rules.Command, k nomisKey, target *time.Time) (bool, error) {
	dpsWins := target == nil || apply.CompareCommits(c.SourceCommitTime, *target) >= 0
	winner := "NOMIS"
	if dpsWins {
		winner = "DPS"
	}
	n := len(p.w.conflicts)
	p.w.conflicts = append(p.w.conflicts, conflict{commandID: fit(c.ID, 64), dpsAlertID: *c.DPSAlertID, key: k, winner: winner,
		sourceCommitTime: c.SourceCommitTime, targetCommitTime: target})
	p.undo = append(p.undo, func() { p.w.conflicts = p.w.conflicts[:n] })
	return dpsWins, nil
}

// alertType is store.alertType over the codes readSet loaded.
func (p *setPlan) alertType(code, fallback string) (string, error) {
	if parent, ok := p.s.cachedParent(code); ok {
		return typeOf(parent, fallback), nil
	}
	// Every code of the batch not cached was asked: it is not in NOMIS.
	return "", &apply.Refusal{Reason: ReasonUnknownCode, Msg: "alert code " + code + " is not in NOMIS's REFERENCE_CODES"}
}

func (p *setPlan) create(c *rules.Command, l *link, reason string) (result, error) {
	st := c.After
	typ, err := p.alertType(st.Code, st.TypeCode)
	if err != nil {
		return result{}, err
	}
	bk, read := p.read.bookings[c.PrisonNumber]
	if !read {
		return result{}, fmt.Errorf("%w: a create for %s, whose booking was not read", errStatementPath, c.PrisonNumber)
	}
	if bk == nil {
		return result{}, &apply.Refusal{Reason: ReasonNoCurrentBooking, Msg: "prisoner " + c.PrisonNumber + " has no current booking in NOMIS"}
	}
	k := nomisKey{book: bk.book, seq: bk.next}
	bk.next++
	p.undo = append(p.undo, func() { bk.next-- })
	cur := &row{key: k, code: st.Code, status: st.Status.String(), from: st.ActiveFrom, to: st.ActiveTo,
		comment: st.Description, authorised: st.AuthorisedBy}
	p.setRowAt(k, &setRow{cur: cur, inserted: &insertion{book: bk.book, root: bk.root, typ: typ, state: st},
		written: true, typ: typ, user: commandUser(c)})
	if l != nil && !l.mapped {
		l = nil
	}
	return done(apply.Applied, reason, c, &k), p.setLink(c, k, l, false)
}

func (p *setPlan) update(c *rules.Command, r *row) error {
	st := c.After
	typ, err := p.alertType(st.Code, st.TypeCode)
	if err != nil {
		return err
	}
	cur := *r
	cur.code, cur.status, cur.from, cur.to = st.Code, st.Status.String(), st.ActiveFrom, st.ActiveTo
	cur.comment, cur.authorised, cur.commitTime = st.Description, st.AuthorisedBy, nil
	sr := &setRow{cur: &cur, written: true, typ: typ, user: commandUser(c)}
	if old := p.rows[r.key]; old != nil && old.inserted != nil {
		sr.inserted, sr.modified = old.inserted, true
	}
	p.setRowAt(r.key, sr)
	return nil
}

// deleteRow is writeTx.deleteAlert in memory: a row this batch inserted is
// then never written; one that was there is deleted.
func (p *setPlan) deleteRow(c *rules.Command, r *row) error {
	sr := &setRow{written: true, user: commandUser(c)}
	if old := p.rows[r.key]; old != nil && old.inserted != nil {
		sr.written = false
	}
	p.setRowAt(r.key, sr)
	return nil
}

// setLink is store.setLink in memory. A key another DPS alert's mapping
// holds is left to the statement path (its unique key refuses it there).
func (p *setPlan) setLink(c *rules.Command, k nomisKey, l *link, deleted bool) error {
	id := *c.DPSAlertID
	if other, ok := p.owners[k]; ok && other != id {
		return fmt.Errorf("%w: NOMIS key %d/%d mapped to alert %s", errStatementPath, k.book, k.seq, other)
	}
	// The type of the first write: a row that exists keeps its own.
	old := p.maps[id]
	m := &setMap{kind: mappingDPSCreated}
	switch {
	case old != nil:
		*m = *old
	case l != nil && !l.mapped:
		m.kind = mappingNOMISCreated
	}
	if prev := p.link(id); prev != nil && prev.key != k {
		if owner, ok := p.owners[prev.key]; ok && owner == id {
			p.setOwner(prev.key, "")
		}
	}
	p.setOwner(k, id)
	pos := c.SourcePosition
	m.key, m.pos, m.deleted, m.number = k, &pos, deleted, c.PrisonNumber
	p.maps[id] = m
	first := old == nil
	if first {
		p.w.mapOrder = append(p.w.mapOrder, id)
	}
	p.undo = append(p.undo, func() {
		if first {
			delete(p.maps, id)
			p.w.mapOrder = p.w.mapOrder[:len(p.w.mapOrder)-1]
		} else {
			p.maps[id] = old
		}
	})
	return nil
}

// finish collects the writes. A mapping row moving to a key that another
// alert's row held when read is left to the statement path: the multi-row
// write could meet the unique key before that row moves away.
func (p *setPlan) finish() error {
	p.w.rows = p.rows
	p.w.maps = p.maps
	released := make(map[nomisKey]bool, len(p.w.releases))
	for _, r := range p.w.releases {
		released[r.key] = true
	}
	for _, id := range p.w.mapOrder {
		k := p.maps[id].key
		if owner, ok := p.read.owners[k]; ok && owner != id && !released[k] {
			return fmt.Errorf("%w: NOMIS key %d/%d moves from alert %s to alert %s", errStatementPath, k.book, k.seq, owner, id)
		}
	}
	return nil
}

// outboxRow is the outbox row of c's result r (with its DLQ entry when d
// is not nil).
func outboxRow(c *apply.Cmd, r result, d *apply.DLQReason) apply.OutboxRow {
	alertKey := ""
	if d != nil {
		alertKey = holdKey(c)
	}
	row := apply.OutboxRowOf(c, r.Outcome, d, alertKey)
	if row.DPSAlertID != nil && uuid.Validate(*row.DPSAlertID) != nil {
		row.DPSAlertID = nil // a malformed command's id is no DPS alert
	}
	if r.key != nil {
		book, seq := r.key.book, r.key.seq
		row.NOMISBookingID, row.NOMISAlertSeq = &book, &seq
	}
	return row
}

// byUser returns, per NOMIS user in the order each first wrote, the
// keys of the rows that user wrote last.
func (w *setWrites) byUser() ([]string, map[string][]nomisKey) {
	var users []string
	out := map[string][]nomisKey{}
	for _, k := range w.order {
		r := w.rows[k]
		if r == nil || !r.written {
			continue
		}
		if _, ok := out[r.user]; !ok {
			users = append(users, r.user)
		}
		out[r.user] = append(out[r.user], k)
	}
	return users, out
}

var _ path = (*setPlan)(nil)
