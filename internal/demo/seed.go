package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/alertsync/alertsync/deploy"
)

// seedUser is the NOMIS user the sample rows are created by.
const seedUser = "DEMO_SEED"

// samplePrisoner is one seeded prisoner: a person with bookings (the first
// is the current one, BOOKING_SEQ 1) and, when merged, an alias record
// carrying the booking of the prison number merged into it.
type samplePrisoner struct {
	offenderID   int64
	prisonNumber string
	merged       string // prison number merged into this one, "" if none
	bookings     []sampleBooking
}

type sampleBooking struct {
	id       int64
	offender int64 // OFFENDER_ID the booking hangs off (an alias for a merged booking)
	seq      int
	begin    time.Time
	prison   string
	alerts   []sampleAlert
}

type sampleAlert struct {
	seq        int
	typ, code  string
	from       time.Time
	expiry     *time.Time
	status     string
	authorised string
	comment    string
}

var (
	samplePrisons = []string{"MDI", "LEI", "BXI", "WWI", "HMI", "PVI"}
	sampleStaff   = []string{"Officer Khan", "SO Patel", "Governor Reid", "Nurse Adams", "OSG Lewis", ""}
	sampleNotes   = []string{"Sample alert created by alertsync demo.", "Demo: review at next key worker session.",
		"Demo: see case notes.", "Demo: raised on reception."}
)

// samplePrisoners returns n deterministic prisoners: realistic prison
// numbers, one to three bookings each, one to four alerts on the current
// booking, and every fourth prisoner carrying a merged-in prison number.
func samplePrisoners(n int) []samplePrisoner {
	rng := rand.New(rand.NewPCG(2026, 8)) //nolint:gosec // G404: sample data, deterministic on purpose
	var codes []deploy.AlertCode
	for _, c := range deploy.AlertCodes() {
		if c.Active() {
			codes = append(codes, c)
		}
	}
	letters := "ABCDEFGHJKLMNPQRSTUVWXYZ"
	seen := map[string]bool{}
	number := func() string {
		for {
			s := fmt.Sprintf("%c%04d%c%c", "ABGH"[rng.IntN(4)], rng.IntN(10000),
				letters[rng.IntN(len(letters))], letters[rng.IntN(len(letters))])
			if !seen[s] {
				seen[s] = true
				return s
			}
		}
	}
	today := time.Now().UTC().Truncate(24 * time.Hour)
	nextBooking := int64(1200000)
	alerts := func(count int, begin time.Time) []sampleAlert {
		var out []sampleAlert
		for i := range count {
			c := codes[rng.IntN(len(codes))]
			from := begin.AddDate(0, 0, rng.IntN(20))
			a := sampleAlert{seq: i + 1, typ: c.TypeCode, code: c.Code, from: from, status: "ACTIVE",
				authorised: sampleStaff[rng.IntN(len(sampleStaff))], comment: sampleNotes[rng.IntN(len(sampleNotes))]}
			if rng.IntN(4) == 0 {
				exp := from.AddDate(0, 6, 0)
				a.expiry = &exp
				if exp.Before(today) {
					a.status = "INACTIVE"
				}
			}
			out = append(out, a)
		}
		return out
	}
	var out []samplePrisoner
	for i := range n {
		p := samplePrisoner{offenderID: int64(100000 + 10*i), prisonNumber: number()}
		nBookings := 1 + rng.IntN(3)
		begin := today.AddDate(0, -rng.IntN(30)-1, 0)
		for b := range nBookings {
			nextBooking++
			bk := sampleBooking{id: nextBooking, offender: p.offenderID, seq: b + 1, begin: begin,
				prison: samplePrisons[rng.IntN(len(samplePrisons))]}
			if b == 0 {
				bk.alerts = alerts(1+rng.IntN(4), begin)
			} else {
				bk.alerts = alerts(rng.IntN(3), begin)
			}
			p.bookings = append(p.bookings, bk)
			begin = begin.AddDate(-1-rng.IntN(3), 0, 0)
		}
		if i%4 == 3 {
			p.merged = number()
			nextBooking++
			p.bookings = append(p.bookings, sampleBooking{id: nextBooking, offender: p.offenderID + 1,
				seq: len(p.bookings) + 1, begin: begin, prison: samplePrisons[rng.IntN(len(samplePrisons))],
				alerts: alerts(1+rng.IntN(2), begin)})
		}
		out = append(out, p)
	}
	return out
}

// seedNOMIS inserts the sample prisoners into the NOMIS stand-in in one
// transaction, unless NOMIS already holds offenders (a restart after the
// seed). It reports whether it seeded.
func seedNOMIS(ctx context.Context, conn *pgx.Conn, prisoners []samplePrisoner) (bool, error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return false, fmt.Errorf("seeding NOMIS: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }() // a no-op after Commit
	var have int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM oms_owner.offenders").Scan(&have); err != nil {
		return false, fmt.Errorf("counting NOMIS offenders: %w", err)
	}
	if have > 0 {
		return false, nil
	}
	const (
		offender = `INSERT INTO oms_owner.offenders (offender_id, offender_id_display, root_offender_id, create_user_id) VALUES ($1, $2, $3, $4)`
		booking  = `INSERT INTO oms_owner.offender_bookings (offender_book_id, booking_begin_date, offender_id, agy_loc_id, active_flag, root_offender_id, booking_seq, create_user_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`
		alert = `INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, expiry_date,
	authorize_person_text, comment_text, caseload_id, caseload_type, create_user_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULLIF($9, ''), $10, $11, 'INST', $12)`
	)
	batch := &pgx.Batch{}
	for _, p := range prisoners {
		batch.Queue(offender, p.offenderID, p.prisonNumber, p.offenderID, seedUser)
		if p.merged != "" {
			// After a merge, the removed person's record is an alias of the
			// retained one (same prison number and root) and keeps its booking.
			batch.Queue(offender, p.offenderID+1, p.prisonNumber, p.offenderID, seedUser)
		}
		for _, b := range p.bookings {
			active := "N"
			if b.seq == 1 {
				active = "Y"
			}
			batch.Queue(booking, b.id, b.begin, b.offender, b.prison, active, p.offenderID, b.seq, seedUser)
			for _, a := range b.alerts {
				batch.Queue(alert, b.id, p.offenderID, a.seq, a.typ, a.code, a.status, a.from, a.expiry,
					a.authorised, a.comment, b.prison, seedUser)
			}
		}
	}
	if err := tx.SendBatch(ctx, batch).Close(); err != nil {
		return false, fmt.Errorf("inserting the sample prisoners into NOMIS: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return false, fmt.Errorf("committing the sample prisoners: %w", err)
	}
	return true, nil
}
