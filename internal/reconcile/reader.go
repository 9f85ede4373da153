package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// NOMISReader reads the NOMIS side. Its contract: pages come in
// prison-number order (byte order), each prisoner whole and once, every
// prisoner with a current booking (BOOKING_SEQ 1; the latest begun when
// several) listed even when it has no alerts; an alert carries its
// NOMIS-side mapping when one exists (deleted or not). It only reads.
type NOMISReader interface {
	// Page returns up to limit prisoners whose prison number sorts after
	// after ("" for the first page). Fewer than limit means the end.
	Page(ctx context.Context, after string, limit int) ([]NOMISPrisoner, error)
	// Prisoner returns the prisoner pn (no alerts when it has no current
	// booking).
	Prisoner(ctx context.Context, pn string) (NOMISPrisoner, error)
}

// wallClock returns the instant of the wall-clock time t (whatever its
// location) in loc: NOMIS and DPS timestamps hold Europe/London local time.
func wallClock(t time.Time, loc *time.Location) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	return time.Date(y, m, d, hh, mm, ss, t.Nanosecond(), loc)
}

// groupNOMIS appends the row of prisoner pn to out, starting a new
// prisoner when pn changes; a row without an alert (hasAlert false) only
// lists the prisoner.
func groupNOMIS(out []NOMISPrisoner, pn string, hasAlert bool, a NOMISAlert) ([]NOMISPrisoner, error) {
	if n := len(out); n == 0 || out[n-1].PrisonNumber != pn {
		if n > 0 && out[n-1].PrisonNumber > pn {
			return out, orderError("NOMIS", out[n-1].PrisonNumber, pn)
		}
		out = append(out, NOMISPrisoner{PrisonNumber: pn})
	}
	if hasAlert {
		p := &out[len(out)-1]
		p.Alerts = append(p.Alerts, a)
	}
	return out, nil
}

func orderError(side, prev, next string) error {
	return fmt.Errorf("reading %s: prison number %q came after %q: the database does not sort prison numbers in byte order "+
		"(check the collation of the prison number column; reconcile merges both sides in byte order)", side, next, prev)
}

func nullString(s sql.NullString) *string {
	if !s.Valid {
		return nil
	}
	v := s.String
	return &v
}

// standin reads the NOMIS PostgreSQL stand-in (schema oms_owner, the
// sync's tables in schema alertsync).
type standin struct {
	db  *sql.DB
	loc *time.Location
}

// NewStandinReader returns the NOMISReader of the PostgreSQL stand-in on
// db, whose timestamps are wall-clock times in loc.
func NewStandinReader(db *sql.DB, loc *time.Location) NOMISReader {
	return &standin{db: db, loc: loc}
}

const standinSelect = `SELECT cur.pn, a.offender_book_id::bigint, a.alert_seq::int, a.alert_date, a.expiry_date,
       a.alert_type, a.alert_code, a.alert_status, a.authorize_person_text, a.comment_text,
       a.create_datetime, a.create_user_id, m.dps_alert_id::text, m.deleted_at IS NOT NULL
  FROM cur
  LEFT JOIN oms_owner.offender_alerts a ON a.offender_book_id = cur.book
  LEFT JOIN alertsync.alertsync_alert_mapping m ON m.offender_book_id = a.offender_book_id AND m.alert_seq = a.alert_seq
         AND m.deleted_at IS NULL
 ORDER BY cur.pn, a.alert_seq`

const (
	// standinPageSQL reads the alerts of the current bookings of the next
	// $2 prisoners after prison number $1.
	standinPageSQL = `WITH cur AS (
    SELECT DISTINCT ON (o.offender_id_display) o.offender_id_display AS pn, b.offender_book_id AS book
      FROM oms_owner.offenders o
      JOIN oms_owner.offender_bookings b ON b.offender_id = o.offender_id
     WHERE b.booking_seq = 1 AND o.offender_id_display > $1
     ORDER BY o.offender_id_display, b.booking_begin_date DESC, b.offender_book_id DESC
     LIMIT $2)
` + standinSelect

	// standinPrisonerSQL reads the alerts of the current booking of $1.
	standinPrisonerSQL = `WITH cur AS (
    SELECT o.offender_id_display AS pn, b.offender_book_id AS book
      FROM oms_owner.offenders o
      JOIN oms_owner.offender_bookings b ON b.offender_id = o.offender_id
     WHERE b.booking_seq = 1 AND o.offender_id_display = $1
     ORDER BY b.booking_begin_date DESC, b.offender_book_id DESC
     LIMIT 1)
` + standinSelect
)

func (s *standin) Page(ctx context.Context, after string, limit int) ([]NOMISPrisoner, error) {
	return s.query(ctx, standinPageSQL, after, limit)
}

func (s *standin) Prisoner(ctx context.Context, pn string) (NOMISPrisoner, error) {
	ps, err := s.query(ctx, standinPrisonerSQL, pn)
	if err != nil || len(ps) == 0 {
		return NOMISPrisoner{PrisonNumber: pn}, err
	}
	return ps[0], nil
}

func (s *standin) query(ctx context.Context, q string, args ...any) ([]NOMISPrisoner, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading NOMIS alerts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		out                                  []NOMISPrisoner
		pn                                   string
		book                                 sql.NullInt64
		seq                                  sql.NullInt32
		alertDate, expiry, created           sql.NullTime
		typ, code, status, auth, comment, cu sql.NullString
		dpsID                                sql.NullString
		mapDeleted                           sql.NullBool
	)
	for rows.Next() {
		if err := rows.Scan(&pn, &book, &seq, &alertDate, &expiry, &typ, &code, &status, &auth, &comment, &created, &cu, &dpsID, &mapDeleted); err != nil {
			return nil, fmt.Errorf("reading NOMIS alerts: %w", err)
		}
		var a NOMISAlert
		if book.Valid {
			a.Row = rules.NOMISAlertRow{
				OffenderBookID: book.Int64, AlertSeq: seq.Int32, AlertType: typ.String, AlertCode: code.String,
				AlertStatus: status.String, AuthorizePersonText: nullString(auth), CommentText: nullString(comment),
				CreateUserID: cu.String,
			}
			if alertDate.Valid {
				a.Row.AlertDate = wallClock(alertDate.Time, s.loc)
			}
			if expiry.Valid {
				t := wallClock(expiry.Time, s.loc)
				a.Row.ExpiryDate = &t
			}
			if created.Valid {
				a.Row.CreateDatetime = wallClock(created.Time, s.loc)
			}
			a.DPSAlertID = dpsID.String
			a.MappingDeleted = mapDeleted.Bool
		}
		if out, err = groupNOMIS(out, pn, book.Valid, a); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading NOMIS alerts: %w", err)
	}
	return out, nil
}

// dpsReader reads the DPS side: public.alert (soft-deleted rows included)
// with the DPS-side mapping alertsync.alert_mapping.
type dpsReader struct {
	db *sql.DB
}

const dpsSelect = `SELECT a.prison_number, a.id::text, a.alert_code_id, a.description, a.authorised_by,
       a.active_from, a.active_to, a.created_at, a.deleted_at IS NOT NULL,
       m.dps_alert_id IS NOT NULL, m.nomis_booking_id, m.nomis_alert_seq, COALESCE(m.deleted, false)
  FROM alert a
  LEFT JOIN alertsync.alert_mapping m ON m.dps_alert_id = a.id`

const (
	// dpsPageSQL reads the alerts of the next $2 prison numbers after $1:
	// the last of them is found on the index first, so that the alerts are
	// read as one index range.
	dpsPageSQL = dpsSelect + `
 WHERE a.prison_number > $1
   AND a.prison_number <= (SELECT max(p.prison_number) FROM (
           SELECT DISTINCT prison_number FROM alert WHERE prison_number > $1 ORDER BY prison_number LIMIT $2) p)
 ORDER BY a.prison_number, a.id`

	// dpsPrisonerSQL reads the alerts of prison number $1.
	dpsPrisonerSQL = dpsSelect + `
 WHERE a.prison_number = $1
 ORDER BY a.id`

	// dpsCodesSQL reads the reference data the rules map with.
	dpsCodesSQL = `SELECT c.id, c.code, t.code, c.deactivated_at IS NULL
  FROM alert_code c JOIN alert_type t ON t.id = c.alert_type_id`
)

func (r *dpsReader) Page(ctx context.Context, after string, limit int) ([]DPSPrisoner, error) {
	return r.query(ctx, dpsPageSQL, after, limit)
}

func (r *dpsReader) Prisoner(ctx context.Context, pn string) (DPSPrisoner, error) {
	ps, err := r.query(ctx, dpsPrisonerSQL, pn)
	if err != nil || len(ps) == 0 {
		return DPSPrisoner{PrisonNumber: pn}, err
	}
	return ps[0], nil
}

// deletedMark marks a soft-deleted row: only whether deleted_at is set
// matters to the comparison.
var deletedMark = time.Unix(0, 0).UTC()

func (r *dpsReader) query(ctx context.Context, q string, args ...any) ([]DPSPrisoner, error) {
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading DPS alerts: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		out                   []DPSPrisoner
		pn, id                string
		codeID                int64
		desc, auth            sql.NullString
		from                  time.Time
		to                    sql.NullTime
		created               time.Time
		deleted, mapped, mdel bool
		book                  sql.NullInt64
		seq                   sql.NullInt32
	)
	for rows.Next() {
		if err := rows.Scan(&pn, &id, &codeID, &desc, &auth, &from, &to, &created, &deleted, &mapped, &book, &seq, &mdel); err != nil {
			return nil, fmt.Errorf("reading DPS alerts: %w", err)
		}
		a := DPSAlert{
			Row: rules.DPSAlertRow{
				ID: id, AlertCodeID: codeID, PrisonNumber: pn, Description: nullString(desc), AuthorisedBy: nullString(auth),
				ActiveFrom: rules.DateOf(from.Date()), CreatedAt: created,
			},
			Mapped: mapped, HasKey: book.Valid && seq.Valid, BookingID: book.Int64, AlertSeq: seq.Int32, MappingDeleted: mdel,
		}
		if to.Valid {
			d := rules.DateOf(to.Time.Date())
			a.Row.ActiveTo = &d
		}
		if deleted {
			a.Row.DeletedAt = &deletedMark
		}
		if n := len(out); n == 0 || out[n-1].PrisonNumber != pn {
			if n > 0 && out[n-1].PrisonNumber > pn {
				return nil, orderError("DPS", out[n-1].PrisonNumber, pn)
			}
			out = append(out, DPSPrisoner{PrisonNumber: pn})
		}
		p := &out[len(out)-1]
		p.Alerts = append(p.Alerts, a)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading DPS alerts: %w", err)
	}
	return out, nil
}

// loadCodes reads the alert codes of DPS, the reference data of the rules.
func loadCodes(ctx context.Context, db *sql.DB) (*rules.CodeTable, error) {
	rows, err := db.QueryContext(ctx, dpsCodesSQL)
	if err != nil {
		return nil, fmt.Errorf("reading DPS alert codes: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var codes []rules.Code
	for rows.Next() {
		var c rules.Code
		if err := rows.Scan(&c.ID, &c.Code, &c.Type, &c.Active); err != nil {
			return nil, fmt.Errorf("reading DPS alert codes: %w", err)
		}
		codes = append(codes, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading DPS alert codes: %w", err)
	}
	return rules.NewCodeTable(codes...), nil
}
