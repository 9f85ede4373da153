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
// of an apply names its command.
//
// Alerts are identified across both systems by the events that name two
// keys of one alert (a NOMIS change carrying its DPS id, a command or
// outcome carrying both, a snapshot's mapped alert). An alert selector
// matches every event that names a key of its alert, and the outcomes and
// DLQ entries of the commands matched. A prisoner selector matches every
// event that names the prisoner; an event that names no prisoner (a NOMIS
// change of a booking that no longer exists, a DLQ entry known only by its
// alert key) when it names one of the prisoner's alerts or bookings; and the
// outcomes and DLQ entries of the commands matched. Undecodable records
// whose key names nobody are shown with every selector, marked
// Unattributed.
func Select(evs []Event, sel Selector, w Window) Selection {
	uf := unionFind{}
	for i := range evs {
		for _, g := range evs[i].ident.alerts {
			for _, k := range g {
				uf.union(g[0], k)
			}
		}
	}
	match := make([]bool, len(evs))
	if k := sel.key(); k != "" {
		root := uf.find(k)
		for i := range evs {
			match[i] = namesRoot(&uf, evs[i].ident, map[alertKey]bool{root: true})
		}
	} else {
		roots, books := map[alertKey]bool{}, map[int64]bool{}
		for i := range evs {
			id := evs[i].ident
			if id.prison != sel.PrisonNumber {
				continue
			}
			match[i] = true
			for _, g := range id.alerts {
				roots[uf.find(g[0])] = true
			}
			for _, b := range id.bookings {
				books[b] = true
			}
		}
		for i := range evs {
			id := evs[i].ident
			if match[i] || id.prison != "" {
				continue
			}
			match[i] = namesRoot(&uf, id, roots) || slices.ContainsFunc(id.bookings, func(b int64) bool { return books[b] })
		}
	}
	commands := map[string][]int{} // command id → command events
	outcomes := map[string][]int{} // command id → outcome events
	for i := range evs {
		switch evs[i].Kind {
		case KindCommandDPS, KindCommandNOMIS:
			commands[evs[i].CommandID] = append(commands[evs[i].CommandID], i)
		case KindOutcome:
			outcomes[evs[i].CommandID] = append(outcomes[evs[i].CommandID], i)
		}
	}
	selectedCmds := map[string]bool{}
	for i := range evs {
		if match[i] && (evs[i].Kind == KindCommandDPS || evs[i].Kind == KindCommandNOMIS) {
			selectedCmds[evs[i].CommandID] = true
		}
	}
	for i := range evs {
		if !match[i] && (evs[i].Kind == KindOutcome || evs[i].Kind == KindDLQ) && selectedCmds[evs[i].ident.commandID] {
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
				alertRoots[uf.find(g[0])] = true
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
	slices.SortStableFunc(s.Events, func(a, b Event) int {
		return cmp.Or(a.Time.Compare(b.Time.Time), cmp.Compare(a.Record.Topic, b.Record.Topic),
			cmp.Compare(a.Record.Partition, b.Record.Partition), cmp.Compare(a.Record.Offset, b.Record.Offset))
	})
	members := uf.members()
	for r := range alertRoots {
		var keys []string
		for _, k := range members[r] {
			keys = append(keys, strings.Replace(string(k), ":", " ", 1))
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

// namesRoot reports whether id names an alert whose root is in roots.
func namesRoot(uf *unionFind, id ident, roots map[alertKey]bool) bool {
	for _, g := range id.alerts {
		if roots[uf.find(g[0])] {
			return true
		}
	}
	return false
}

// unionFind groups the keys that name one alert.
type unionFind map[alertKey]alertKey

func (u unionFind) find(k alertKey) alertKey {
	p, ok := u[k]
	if !ok {
		u[k] = k
		return k
	}
	if p == k {
		return k
	}
	r := u.find(p)
	u[k] = r
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

// members returns the keys of each root.
func (u unionFind) members() map[alertKey][]alertKey {
	out := map[alertKey][]alertKey{}
	for k := range u {
		r := u.find(k)
		out[r] = append(out[r], k)
	}
	return out
}
