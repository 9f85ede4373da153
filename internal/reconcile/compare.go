package reconcile

import (
	"errors"
	"strconv"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// Kind is the kind of a Difference.
type Kind string

// Kinds of difference; see doc.go.
const (
	KindMissingInDPS      Kind = "missing_in_dps"
	KindMissingInNOMIS    Kind = "missing_in_nomis"
	KindField             Kind = "field"
	KindUnmapped          Kind = "unmapped"
	KindDeletedButPresent Kind = "deleted_but_present"
	KindMappingConflict   Kind = "mapping_conflict"
	KindInvalid           Kind = "invalid"
)

// Kinds returns every Kind, in report order.
func Kinds() []Kind {
	return []Kind{KindMissingInDPS, KindMissingInNOMIS, KindField, KindUnmapped, KindDeletedButPresent, KindMappingConflict, KindInvalid}
}

// Compared fields, as a Difference names them.
const (
	FieldCode         = "code"
	FieldType         = "type"
	FieldActiveFrom   = "active_from"
	FieldActiveTo     = "active_to"
	FieldStatus       = "status"
	FieldDescription  = "description"
	FieldAuthorisedBy = "authorised_by"
)

// NOMISAlert is one OFFENDER_ALERTS row of a prisoner's current booking,
// with its NOMIS-side mapping. Row timestamps are instants (the NOMIS wall
// clock read in the configured zone).
type NOMISAlert struct {
	Row rules.NOMISAlertRow
	// DPSAlertID is the DPS alert id of the NOMIS-side mapping, "" when the
	// row has none.
	DPSAlertID string
	// MappingDeleted: the NOMIS-side mapping is marked deleted.
	MappingDeleted bool
}

// DPSAlert is one public.alert row (soft-deleted ones included) with its
// DPS-side mapping.
type DPSAlert struct {
	Row rules.DPSAlertRow
	// Mapped: a DPS-side mapping row exists; HasKey: it holds a NOMIS key
	// (BookingID, AlertSeq).
	Mapped, HasKey bool
	BookingID      int64
	AlertSeq       int32
	// MappingDeleted: the DPS-side mapping is marked deleted.
	MappingDeleted bool
}

// NOMISPrisoner is the NOMIS side of one prisoner: the alerts of the
// current booking, in ALERT_SEQ order.
type NOMISPrisoner struct {
	PrisonNumber string
	Alerts       []NOMISAlert
}

// DPSPrisoner is the DPS side of one prisoner.
type DPSPrisoner struct {
	PrisonNumber string
	Alerts       []DPSAlert
}

// FieldDiff is one field of a pair that differs. NOMIS and DPS hold the
// values (as the sync's model sees them) only when values were asked for.
type FieldDiff struct {
	Field string  `json:"field"`
	NOMIS *string `json:"nomis,omitempty"`
	DPS   *string `json:"dps,omitempty"`
}

// Difference is one difference reconcile reports.
type Difference struct {
	PrisonNumber   string      `json:"prison_number"`
	Kind           Kind        `json:"kind"`
	DPSAlertID     string      `json:"dps_alert_id,omitempty"`
	NOMISBookingID int64       `json:"nomis_booking_id,omitempty"`
	NOMISAlertSeq  int32       `json:"nomis_alert_seq,omitempty"`
	Code           string      `json:"code,omitempty"`
	Fields         []FieldDiff `json:"fields,omitempty"`
	// Side is the side whose row is reported for one-sided kinds
	// (unmapped, deleted_but_present, invalid): NOMIS or DPS.
	Side string `json:"side,omitempty"`
	// Match: an unmapped row has an unmapped twin of the same code and
	// dates on the other side (then both keys are set).
	Match  bool   `json:"match,omitempty"`
	Detail string `json:"detail"`
}

// NOMISKey returns the NOMIS key as "booking:seq", "" when none.
func (d *Difference) NOMISKey() string {
	if d.NOMISBookingID == 0 && d.NOMISAlertSeq == 0 {
		return ""
	}
	return strconv.FormatInt(d.NOMISBookingID, 10) + ":" + strconv.Itoa(int(d.NOMISAlertSeq))
}

// Comparer compares one prisoner's two sides. It is not safe for
// concurrent use (it reuses buffers).
type Comparer struct {
	rules      *rules.Rules
	loc        *time.Location
	showValues bool
	now        func() time.Time

	nst   []rules.AlertState
	nok   []bool
	dst   []rules.AlertState
	dok   []bool
	pairN []int
	pairD []int
	snap  rules.NOMISSnapshot
}

// NewComparer returns a Comparer mapping rows with r, whose zone is loc.
// showValues puts the differing values into FieldDiffs; now gives the
// current time (status of DPS alerts is by the date of now in loc).
func NewComparer(r *rules.Rules, loc *time.Location, showValues bool, now func() time.Time) *Comparer {
	if now == nil {
		now = time.Now
	}
	return &Comparer{rules: r, loc: loc, showValues: showValues, now: now}
}

// Compare returns the differences between the NOMIS and DPS sides of the
// prisoner pn (either may be empty).
func (c *Comparer) Compare(pn string, n []NOMISAlert, d []DPSAlert) []Difference {
	if len(n) == 0 && len(d) == 0 {
		return nil
	}
	now := c.now()
	today := rules.DateIn(now, c.loc)
	var out []Difference
	c.mapNOMIS(pn, n, now)
	c.mapDPS(d, now)
	for j := range c.nok {
		if !c.nok[j] {
			out = append(out, Difference{PrisonNumber: pn, Kind: KindInvalid, Side: "NOMIS",
				NOMISBookingID: n[j].Row.OffenderBookID, NOMISAlertSeq: n[j].Row.AlertSeq, Code: n[j].Row.AlertCode,
				DPSAlertID: n[j].DPSAlertID, Detail: c.nomisErr(n, j, now)})
		}
	}

	c.pairN = fill(c.pairN, len(n))
	c.pairD = fill(c.pairD, len(d))
	// Pair by the DPS-side mapping, then by the NOMIS-side one.
	for i := range d {
		if !d[i].HasKey {
			continue
		}
		for j := range n {
			if n[j].Row.OffenderBookID == d[i].BookingID && n[j].Row.AlertSeq == d[i].AlertSeq && c.pairN[j] < 0 {
				c.pairN[j], c.pairD[i] = i, j
				break
			}
		}
	}
	for j := range n {
		if n[j].DPSAlertID == "" {
			continue
		}
		for i := range d {
			if d[i].Row.ID != n[j].DPSAlertID {
				continue
			}
			switch {
			case c.pairN[j] < 0 && c.pairD[i] < 0:
				c.pairN[j], c.pairD[i] = i, j
			case c.pairN[j] != i:
				out = append(out, Difference{PrisonNumber: pn, Kind: KindMappingConflict, DPSAlertID: d[i].Row.ID,
					NOMISBookingID: n[j].Row.OffenderBookID, NOMISAlertSeq: n[j].Row.AlertSeq, Code: n[j].Row.AlertCode,
					Detail: "the NOMIS-side mapping links this NOMIS alert and DPS alert, the DPS-side mapping links one of them elsewhere"})
			}
			break
		}
	}

	var unN, unD []int
	for j := range n {
		na := &n[j]
		base := Difference{PrisonNumber: pn, NOMISBookingID: na.Row.OffenderBookID, NOMISAlertSeq: na.Row.AlertSeq, Code: na.Row.AlertCode}
		if i := c.pairN[j]; i >= 0 {
			da := &d[i]
			base.DPSAlertID = da.Row.ID
			switch {
			case da.Row.DeletedAt != nil:
				base.Kind, base.Side = KindDeletedButPresent, "NOMIS"
				base.Detail = "the DPS alert is deleted, the NOMIS alert is still present"
				out = append(out, base)
			case na.MappingDeleted || da.MappingDeleted:
				base.Kind, base.Side = KindDeletedButPresent, "NOMIS"
				base.Detail = "the mapping is marked deleted, both alerts are still present"
				out = append(out, base)
			case c.nok[j] && c.dok[i]:
				if f := c.fields(&c.nst[j], &c.dst[i], today); len(f) > 0 {
					base.Kind, base.Fields = KindField, f
					base.Detail = "fields differ"
					out = append(out, base)
				}
			}
			continue
		}
		if na.DPSAlertID != "" {
			base.DPSAlertID = na.DPSAlertID
			if na.MappingDeleted {
				base.Kind, base.Side = KindDeletedButPresent, "NOMIS"
				base.Detail = "the NOMIS-side mapping is marked deleted, the NOMIS alert is still present"
			} else {
				base.Kind = KindMissingInDPS
				base.Detail = "the mapped DPS alert is not among the prisoner's DPS alerts"
			}
			out = append(out, base)
			continue
		}
		if c.nok[j] {
			unN = append(unN, j)
		}
	}
	for i := range d {
		da := &d[i]
		if c.pairD[i] >= 0 || da.Row.DeletedAt != nil || !c.dok[i] && !da.Mapped {
			if !c.dok[i] && da.Row.DeletedAt == nil {
				out = append(out, Difference{PrisonNumber: pn, Kind: KindInvalid, Side: "DPS", DPSAlertID: da.Row.ID,
					Detail: c.dpsErr(da, now)})
			}
			continue
		}
		base := Difference{PrisonNumber: pn, DPSAlertID: da.Row.ID}
		if c.dok[i] {
			base.Code = c.dst[i].Code
		}
		switch {
		case da.MappingDeleted:
			base.Kind, base.Side = KindDeletedButPresent, "DPS"
			base.Detail = "the DPS-side mapping is marked deleted, the DPS alert is still present"
			base.NOMISBookingID, base.NOMISAlertSeq = da.BookingID, da.AlertSeq
			out = append(out, base)
		case da.Mapped:
			base.Kind = KindMissingInNOMIS
			base.Detail = "the mapped NOMIS alert is not on the prisoner's current booking"
			base.NOMISBookingID, base.NOMISAlertSeq = da.BookingID, da.AlertSeq
			out = append(out, base)
		default:
			unD = append(unD, i)
		}
	}
	return append(out, c.unmapped(pn, n, d, unN, unD, today)...)
}

// unmapped reports the rows mapped on neither side, pairing NOMIS and DPS
// rows of the same code and dates.
func (c *Comparer) unmapped(pn string, n []NOMISAlert, d []DPSAlert, unN, unD []int, today rules.Date) []Difference {
	var out []Difference
	usedD := make([]bool, len(unD))
	for _, j := range unN {
		diff := Difference{PrisonNumber: pn, Kind: KindUnmapped, Side: "NOMIS", Code: n[j].Row.AlertCode,
			NOMISBookingID: n[j].Row.OffenderBookID, NOMISAlertSeq: n[j].Row.AlertSeq,
			Detail: "no mapping on either side and no unmapped DPS alert of the same code and dates"}
		for k, i := range unD {
			if usedD[k] {
				continue
			}
			ns, ds := &c.nst[j], &c.dst[i]
			if ns.Code == ds.Code && ns.ActiveFrom == ds.ActiveFrom && sameActiveTo(ns, ds, today) {
				usedD[k] = true
				diff.Match, diff.Side, diff.DPSAlertID = true, "", d[i].Row.ID
				diff.Fields = c.fields(ns, ds, today)
				diff.Detail = "no mapping on either side; matches the unmapped DPS alert of the same code and dates"
				break
			}
		}
		out = append(out, diff)
	}
	for k, i := range unD {
		if usedD[k] {
			continue
		}
		out = append(out, Difference{PrisonNumber: pn, Kind: KindUnmapped, Side: "DPS", DPSAlertID: d[i].Row.ID, Code: c.dst[i].Code,
			Detail: "no mapping on either side and no unmapped NOMIS alert of the same code and dates"})
	}
	return out
}

// mapNOMIS maps the NOMIS rows into c.nst with the transformer's snapshot
// rule; c.nok[j] is false for a row the rules refuse.
func (c *Comparer) mapNOMIS(pn string, n []NOMISAlert, now time.Time) {
	c.nst = c.nst[:0]
	c.nok = c.nok[:0]
	if len(n) == 0 {
		return
	}
	c.snap.OffenderNo = pn
	c.snap.Source = rules.Source{CommitTime: now}
	c.snap.Alerts = c.snap.Alerts[:0]
	for j := range n {
		c.snap.Alerts = append(c.snap.Alerts, rules.NOMISSnapshotAlert{Row: n[j].Row})
	}
	cmd, _, err := c.rules.NOMISSnapshot(&c.snap)
	if err == nil {
		for k := range cmd.Alerts {
			c.nst = append(c.nst, cmd.Alerts[k].State)
			c.nok = append(c.nok, true)
		}
		return
	}
	// One row spoils the snapshot: map them one by one.
	for j := range n {
		st, err := c.nomisOne(pn, &n[j].Row, now)
		c.nst = append(c.nst, st)
		c.nok = append(c.nok, err == nil)
	}
}

func (c *Comparer) nomisOne(pn string, row *rules.NOMISAlertRow, now time.Time) (rules.AlertState, error) {
	s := rules.NOMISSnapshot{OffenderNo: pn, Source: rules.Source{CommitTime: now}, Alerts: []rules.NOMISSnapshotAlert{{Row: *row}}}
	cmd, _, err := c.rules.NOMISSnapshot(&s)
	if err != nil {
		return rules.AlertState{}, err
	}
	return cmd.Alerts[0].State, nil
}

func (c *Comparer) nomisErr(n []NOMISAlert, j int, now time.Time) string {
	_, err := c.nomisOne("?", &n[j].Row, now)
	return ruleErrText(err)
}

// mapDPS maps the live DPS rows into c.dst as the transformer maps them
// for NOMIS; c.dok[i] is false for a deleted row or one the rules refuse.
func (c *Comparer) mapDPS(d []DPSAlert, now time.Time) {
	c.dst = c.dst[:0]
	c.dok = c.dok[:0]
	for i := range d {
		if d[i].Row.DeletedAt != nil {
			c.dst = append(c.dst, rules.AlertState{})
			c.dok = append(c.dok, false)
			continue
		}
		st, err := c.dpsOne(&d[i], now)
		c.dst = append(c.dst, st)
		c.dok = append(c.dok, err == nil)
	}
}

func (c *Comparer) dpsOne(da *DPSAlert, now time.Time) (rules.AlertState, error) {
	ch := rules.DPSAlertChange{Op: rules.OpRead, After: &da.Row, Source: rules.Source{CommitTime: now}}
	cmd, _, err := c.rules.DPSAlert(&ch)
	if err != nil {
		return rules.AlertState{}, err
	}
	if cmd.After == nil {
		return rules.AlertState{}, errors.New("not an upsert")
	}
	return *cmd.After, nil
}

func (c *Comparer) dpsErr(da *DPSAlert, now time.Time) string {
	_, err := c.dpsOne(da, now)
	return ruleErrText(err)
}

// ruleErrText is the text of a mapping error: rules errors name fields and
// codes, never alert text.
func ruleErrText(err error) string {
	if err == nil {
		return "refused by the mapping rules"
	}
	return "refused by the mapping rules: " + err.Error()
}

// fields returns the fields in which the NOMIS state n and the DPS state d
// differ.
func (c *Comparer) fields(n, d *rules.AlertState, today rules.Date) []FieldDiff {
	var out []FieldDiff
	add := func(field string, nv, dv *string) {
		f := FieldDiff{Field: field}
		if c.showValues {
			f.NOMIS, f.DPS = nv, dv
		}
		out = append(out, f)
	}
	if n.Code != d.Code {
		add(FieldCode, &n.Code, &d.Code)
	}
	if n.TypeCode != d.TypeCode {
		add(FieldType, &n.TypeCode, &d.TypeCode)
	}
	if n.ActiveFrom != d.ActiveFrom {
		add(FieldActiveFrom, dateText(&n.ActiveFrom), dateText(&d.ActiveFrom))
	}
	if !sameActiveTo(n, d, today) {
		add(FieldActiveTo, dateText(n.ActiveTo), dateText(d.ActiveTo))
	}
	if n.Status != d.Status {
		ns, ds := n.Status.String(), d.Status.String()
		add(FieldStatus, &ns, &ds)
	}
	if !sameText(n.Description, d.Description) {
		add(FieldDescription, n.Description, d.Description)
	}
	if !sameText(n.AuthorisedBy, d.AuthorisedBy) {
		add(FieldAuthorisedBy, n.AuthorisedBy, d.AuthorisedBy)
	}
	return out
}

// sameActiveTo compares active_to. A NOMIS alert INACTIVE without an
// expiry date maps to "ended on a date NOMIS does not hold" (rules doc):
// it equals a DPS alert that has ended by today.
func sameActiveTo(n, d *rules.AlertState, today rules.Date) bool {
	if n.ActiveTo == nil && n.Status == rules.StatusInactive {
		return d.ActiveTo != nil && *d.ActiveTo <= today
	}
	if n.ActiveTo == nil || d.ActiveTo == nil {
		return n.ActiveTo == d.ActiveTo
	}
	return *n.ActiveTo == *d.ActiveTo
}

// sameText compares text columns, null and empty alike (Oracle stores ”
// as NULL).
func sameText(a, b *string) bool {
	if a == nil || *a == "" {
		return b == nil || *b == ""
	}
	return b != nil && *a == *b
}

func dateText(d *rules.Date) *string {
	if d == nil {
		return nil
	}
	s := d.String()
	return &s
}

func fill(s []int, n int) []int {
	s = s[:0]
	for range n {
		s = append(s, -1)
	}
	return s
}
