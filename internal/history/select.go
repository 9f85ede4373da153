package history

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Selector says whose history to show: exactly one of a prisoner, a DPS
// alert or a NOMIS alert.
type Selector struct {
	PrisonNumber string
	DPSAlertID   string
	// NOMISBookingID and NOMISAlertSeq name a NOMIS alert when NOMIS is set.
	NOMIS          bool
	NOMISBookingID int64
	NOMISAlertSeq  int32
}

// ParsePrisonNumber returns s in upper case when it can be a prison number
// (1 to 10 letters and digits, e.g. A1234BC).
func ParsePrisonNumber(s string) (string, error) {
	s = strings.ToUpper(strings.TrimSpace(s))
	if s == "" || len(s) > 10 || strings.IndexFunc(s, func(r rune) bool { return (r < 'A' || r > 'Z') && (r < '0' || r > '9') }) >= 0 {
		return "", fmt.Errorf("%q is not a prison number (letters and digits, at most 10, e.g. A1234BC)", s)
	}
	return s, nil
}

// ParseDPSAlertID returns s as a canonical (lower-case) UUID.
func ParseDPSAlertID(s string) (string, error) {
	u, err := uuid.Parse(strings.TrimSpace(s))
	if err != nil {
		return "", fmt.Errorf("%q is not a UUID", s)
	}
	return u.String(), nil
}

// ParseNOMISAlert reads BOOKING_ID:ALERT_SEQ, e.g. 1234567:3.
func ParseNOMISAlert(s string) (book int64, seq int32, err error) {
	b, q, ok := strings.Cut(strings.TrimSpace(s), ":")
	bn, err1 := strconv.ParseInt(b, 10, 64)
	qn, err2 := strconv.ParseInt(q, 10, 32)
	if !ok || err1 != nil || err2 != nil || bn <= 0 || qn <= 0 {
		return 0, 0, fmt.Errorf("%q is not BOOKING_ID:ALERT_SEQ (two positive numbers, e.g. 1234567:3)", s)
	}
	return bn, int32(qn), nil
}

func (s Selector) String() string {
	switch {
	case s.NOMIS:
		return "NOMIS alert " + strconv.FormatInt(s.NOMISBookingID, 10) + ":" + strconv.Itoa(int(s.NOMISAlertSeq))
	case s.DPSAlertID != "":
		return "DPS alert " + s.DPSAlertID
	}
	return "prisoner " + s.PrisonNumber
}

// key returns the alert key of an alert selector ("" for a prisoner).
func (s Selector) key() alertKey {
	switch {
	case s.NOMIS:
		return nomisKey(s.NOMISBookingID, s.NOMISAlertSeq)
	case s.DPSAlertID != "":
		return dpsKey(s.DPSAlertID)
	}
	return ""
}

// Window bounds the events shown by their time; a zero bound is open.
type Window struct {
	Since, Until time.Time
}

func (w Window) holds(t time.Time) bool {
	return (w.Since.IsZero() || !t.Before(w.Since)) && (w.Until.IsZero() || !t.After(w.Until))
}

// Selection is what Select found.
type Selection struct {
	// Events are the events shown, in time order (ties by topic, partition
	// and offset).
	Events []Event
	// Matched counts the events that concern the selector: all but the
	// unattributed undecodable records.
	Matched int
	// Unattributed counts the undecodable records whose key names nobody,
	// shown since they may concern the selector.
	Unattributed int
	// Alerts are the alerts the matched events name: per alert, its keys
	// ("nomis 100:2", "dps <uuid>"), sorted.
	Alerts [][]string
}

// Select returns the events of evs that concern sel within w, linked: each
// command lists the outcomes read for its id, and each outcome or DLQ entry
// of an apply names its command. The alerts are joined by the events of evs
// only; Timeline.Select joins them by every record read.
func Select(evs []Event, sel Selector, w Window) Selection {
	links := unionFind{}
	for i := range evs {
		links.join(evs[i].ident)
	}
	return selectEvents(evs, links, sel, w)
}

// selectEvents is Select with the alerts joined by links.
//
// Alerts are identified across both systems by the records that name two
// keys of one alert (a NOMIS change carrying its DPS id, a command or
// outcome carrying both, a snapshot's mapped alert). An alert selector
// matches every event that names a key of its alert, and the outcomes and
// DLQ entries of the commands matched. A prisoner selector matches every
// event that names the prisoner (a DPS change by either image); an event
// that names no prisoner (a NOMIS change of a booking that no longer
// exists, a DLQ entry known only by its alert key) when it names one of the
// prisoner's alerts or bookings; and the outcomes and DLQ entries of the
// commands matched. Undecodable records whose key names nobody are shown
// with every selector, marked Unattributed.
func selectEvents(evs []Event, links unionFind, sel Selector, w Window) Selection {
	match := make([]bool, len(evs))
	if k := sel.key(); k != "" {
		roots := map[alertKey]bool{links.find(k): true}
		for i := range evs {
			match[i] = namesRoot(links, evs[i].ident, roots)
		}
	} else {
		roots, books := map[alertKey]bool{}, map[int64]bool{}
		for i := range evs {
			id := evs[i].ident
			if !slices.Contains(id.prisons, sel.PrisonNumber) {
				continue
			}
			match[i] = true
			for _, g := range id.alerts {
				roots[links.find(g[0])] = true
			}
			for _, b := range id.bookings {
				books[b] = true
			}
		}
		for i := range evs {
			id := evs[i].ident
			if match[i] || len(id.prisons) > 0 {
				continue
			}
			match[i] = namesRoot(links, id, roots) || slices.ContainsFunc(id.bookings, func(b int64) bool { return books[b] })
		}
	}
	// The commands and outcomes of each command id, by where they were
	// read, so that the command an outcome names (the first) and the
	// outcomes a command lists do not depend on the order the partitions
	// were read in. An empty command id links nothing.
	commands := map[string][]int{}
	outcomes := map[string][]int{}
	for i := range evs {
		id := evs[i].CommandID
		if id == "" {
			continue
		}
		switch evs[i].Kind {
		case KindCommandDPS, KindCommandNOMIS:
			commands[id] = append(commands[id], i)
		case KindOutcome:
			outcomes[id] = append(outcomes[id], i)
		}
	}
	byRecord := func(a, b int) int { return evs[a].Record.compare(evs[b].Record) }
	for _, is := range commands {
		slices.SortFunc(is, byRecord)
	}
	for _, is := range outcomes {
		slices.SortFunc(is, byRecord)
	}
	selectedCmds := map[string]bool{}
	for i := range evs {
		if match[i] && evs[i].CommandID != "" && (evs[i].Kind == KindCommandDPS || evs[i].Kind == KindCommandNOMIS) {
			selectedCmds[evs[i].CommandID] = true
		}
	}
	for i := range evs {
		if !match[i] && (evs[i].Kind == KindOutcome || evs[i].Kind == KindDLQ) && evs[i].ident.commandID != "" && selectedCmds[evs[i].ident.commandID] {
			match[i] = true
		}
	}

	var s Selection
	alertRoots := map[alertKey]bool{}
	for i := range evs {
		ev := evs[i]
		if !w.holds(ev.Time.Time) {
			continue
		}
		switch {
		case match[i]:
			s.Matched++
			for _, g := range ev.ident.alerts {
				alertRoots[links.find(g[0])] = true
			}
		case ev.Unattributed:
			s.Unattributed++
		default:
			continue
		}
		switch ev.Kind {
		case KindCommandDPS, KindCommandNOMIS:
			for _, o := range outcomes[ev.CommandID] {
				ev.Outcomes = append(ev.Outcomes, OutcomeRef{Result: evs[o].Op, Reason: evs[o].Reason, Record: evs[o].Record})
			}
		case KindOutcome, KindDLQ:
			if cs := commands[ev.ident.commandID]; len(cs) > 0 {
				c := &evs[cs[0]]
				ev.Command = &CommandRef{Kind: c.Op, Target: c.Target, Record: c.Record}
				if ev.Kind == KindDLQ && ev.CommandID == "" {
					ev.CommandID = ev.ident.commandID
				}
			}
		}
		s.Events = append(s.Events, ev)
	}
	slices.SortFunc(s.Events, compareEvents)
	for _, ks := range links.members(alertRoots) {
		keys := make([]string, len(ks))
		for i, k := range ks {
			keys[i] = strings.Replace(string(k), ":", " ", 1)
		}
		slices.SortFunc(keys, func(a, b string) int {
			// NOMIS keys first, then DPS ids.
			return cmp.Or(cmp.Compare(b[:3], a[:3]), cmp.Compare(a, b))
		})
		s.Alerts = append(s.Alerts, keys)
	}
	slices.SortFunc(s.Alerts, func(a, b []string) int { return slices.Compare(a, b) })
	return s
}

// compareEvents orders events by time; events of one millisecond by their
// source positions (those without one first; positions of one source – the
// NOMIS or the DPS database – in their order, NOMIS after DPS); then by
// topic, partition and offset. It is a total order, so the timeline does
// not depend on the order the partitions were read in.
func compareEvents(a, b Event) int {
	as, ac, ach := a.sourcePosition()
	bs, bc, bch := b.sourcePosition()
	return cmp.Or(a.Time.Compare(b.Time.Time), cmp.Compare(as, bs), cmp.Compare(ac, bc), cmp.Compare(ach, bch), a.Record.compare(b.Record))
}

// sourcePosition returns the database the event's source position is of
// ("" when it has none) and the position.
func (e *Event) sourcePosition() (side string, commit, change int64) {
	if e.Position == nil {
		return "", 0, 0
	}
	switch e.Kind {
	case KindNOMISChange, KindNOMISSnapshot:
		side = "NOMIS"
	case KindDPSChange:
		side = "DPS"
	case KindCommandDPS, KindCommandNOMIS:
		side = e.Origin // the side whose change the command comes from
	case KindOutcome:
		// The position of the change behind the command, on the side
		// opposite its target.
		side = map[string]string{"DPS": "NOMIS", "NOMIS": "DPS"}[e.Target]
	}
	return side, e.Position.Commit, e.Position.Change
}

// namesRoot reports whether id names an alert whose root is in roots.
func namesRoot(links unionFind, id ident, roots map[alertKey]bool) bool {
	for _, g := range id.alerts {
		if roots[links.find(g[0])] {
			return true
		}
	}
	return false
}

// unionFind joins the keys that name one alert. A key maps to its parent;
// a root, and a key joined with no other, has no entry, so that it holds
// only the keys of alerts known in both systems.
type unionFind map[alertKey]alertKey

// find returns the root of k's alert.
func (u unionFind) find(k alertKey) alertKey {
	r := k
	for {
		p, ok := u[r]
		if !ok {
			break
		}
		r = p
	}
	// Path compression.
	for k != r {
		p := u[k]
		u[k] = r
		k = p
	}
	return r
}

func (u unionFind) union(a, b alertKey) {
	ra, rb := u.find(a), u.find(b)
	if ra != rb {
		// The smaller key is the root, so that roots do not depend on the
		// order records were read in.
		if rb < ra {
			ra, rb = rb, ra
		}
		u[rb] = ra
	}
}

// join joins the keys of each alert id names.
func (u unionFind) join(id ident) {
	for _, g := range id.alerts {
		for _, k := range g[1:] {
			u.union(g[0], k)
		}
	}
}

// members returns the keys of the alert of each of roots, the root first.
func (u unionFind) members(roots map[alertKey]bool) map[alertKey][]alertKey {
	out := make(map[alertKey][]alertKey, len(roots))
	for r := range roots {
		out[r] = []alertKey{r}
	}
	for k := range u {
		if r := u.find(k); roots[r] {
			out[r] = append(out[r], k)
		}
	}
	return out
}
