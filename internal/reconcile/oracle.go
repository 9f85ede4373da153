package reconcile

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/alertsync/alertsync/transform/rules"
)

// oracleReader reads NOMIS on Oracle (godror): OMS_OWNER's tables and the
// sync's OMS_OWNER.ALERTSYNC_ALERT_MAPPING. Every Oracle statement of
// reconcile is an ora…SQL constant of this file. Dates come as text
// (TO_CHAR) so that no session time zone or NLS setting changes them.
type oracleReader struct {
	db  *sql.DB
	loc *time.Location
}

// NewOracleReader returns the NOMISReader of NOMIS on Oracle over db,
// whose DATE columns are wall-clock times in loc.
func NewOracleReader(db *sql.DB, loc *time.Location) NOMISReader {
	return &oracleReader{db: db, loc: loc}
}

// oraFirstKey stands for "before every prison number" in the first page:
// Oracle reads ” as NULL, and "> NULL" matches nothing.
const oraFirstKey = " "

const oraSelect = `SELECT c.PN, a.OFFENDER_BOOK_ID, a.ALERT_SEQ,
       TO_CHAR(a.ALERT_DATE, 'YYYY-MM-DD') AS ALERT_DATE,
       TO_CHAR(a.EXPIRY_DATE, 'YYYY-MM-DD') AS EXPIRY_DATE,
       a.ALERT_TYPE, a.ALERT_CODE, a.ALERT_STATUS, a.AUTHORIZE_PERSON_TEXT, a.COMMENT_TEXT,
       TO_CHAR(a.CREATE_DATETIME, 'YYYY-MM-DD HH24:MI:SS') AS CREATE_DATETIME, a.CREATE_USER_ID,
       m.DPS_ALERT_ID, CASE WHEN m.DELETED_AT IS NULL THEN 0 ELSE 1 END AS MAPPING_DELETED
  FROM c
  LEFT JOIN OMS_OWNER.OFFENDER_ALERTS a ON a.OFFENDER_BOOK_ID = c.BOOK
  LEFT JOIN OMS_OWNER.ALERTSYNC_ALERT_MAPPING m ON m.OFFENDER_BOOK_ID = a.OFFENDER_BOOK_ID AND m.ALERT_SEQ = a.ALERT_SEQ
   AND m.DELETED_AT IS NULL
 ORDER BY c.PN, a.ALERT_SEQ`

const (
	// oraPageSQL reads the alerts of the current bookings (BOOKING_SEQ 1,
	// the latest begun) of the next :2 prisoners after prison number :1.
	// NLS_SORT must be BINARY (the default) for the order.
	oraPageSQL = `WITH c AS (
    SELECT o.OFFENDER_ID_DISPLAY AS PN,
           MAX(b.OFFENDER_BOOK_ID) KEEP (DENSE_RANK LAST ORDER BY b.BOOKING_BEGIN_DATE, b.OFFENDER_BOOK_ID) AS BOOK
      FROM OMS_OWNER.OFFENDERS o
      JOIN OMS_OWNER.OFFENDER_BOOKINGS b ON b.OFFENDER_ID = o.OFFENDER_ID
     WHERE b.BOOKING_SEQ = 1 AND o.OFFENDER_ID_DISPLAY > :1
     GROUP BY o.OFFENDER_ID_DISPLAY
     ORDER BY o.OFFENDER_ID_DISPLAY
     FETCH FIRST :2 ROWS ONLY)
` + oraSelect

	// oraPrisonerSQL reads the alerts of the current booking of :1.
	oraPrisonerSQL = `WITH c AS (
    SELECT o.OFFENDER_ID_DISPLAY AS PN,
           MAX(b.OFFENDER_BOOK_ID) KEEP (DENSE_RANK LAST ORDER BY b.BOOKING_BEGIN_DATE, b.OFFENDER_BOOK_ID) AS BOOK
      FROM OMS_OWNER.OFFENDERS o
      JOIN OMS_OWNER.OFFENDER_BOOKINGS b ON b.OFFENDER_ID = o.OFFENDER_ID
     WHERE b.BOOKING_SEQ = 1 AND o.OFFENDER_ID_DISPLAY = :1
     GROUP BY o.OFFENDER_ID_DISPLAY)
` + oraSelect
)

func (r *oracleReader) Page(ctx context.Context, after string, limit int) ([]NOMISPrisoner, error) {
	if after == "" {
		after = oraFirstKey
	}
	return r.query(ctx, oraPageSQL, after, int64(limit))
}

func (r *oracleReader) Prisoner(ctx context.Context, pn string) (NOMISPrisoner, error) {
	ps, err := r.query(ctx, oraPrisonerSQL, pn)
	if err != nil || len(ps) == 0 {
		return NOMISPrisoner{PrisonNumber: pn}, err
	}
	return ps[0], nil
}

func (r *oracleReader) query(ctx context.Context, q string, args ...any) ([]NOMISPrisoner, error) {
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("reading NOMIS alerts on Oracle: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		out                                  []NOMISPrisoner
		pn                                   string
		book, mapDeleted                     sql.NullInt64
		seq                                  sql.NullInt32
		alertDate, expiry, created           sql.NullString
		typ, code, status, auth, comment, cu sql.NullString
		dpsID                                sql.NullString
	)
	for rows.Next() {
		if err := rows.Scan(&pn, &book, &seq, &alertDate, &expiry, &typ, &code, &status, &auth, &comment, &created, &cu, &dpsID, &mapDeleted); err != nil {
			return nil, fmt.Errorf("reading NOMIS alerts on Oracle: %w", err)
		}
		var a NOMISAlert
		if book.Valid {
			a.Row = rules.NOMISAlertRow{
				OffenderBookID: book.Int64, AlertSeq: seq.Int32, AlertType: typ.String, AlertCode: code.String,
				AlertStatus: status.String, AuthorizePersonText: nullString(auth), CommentText: nullString(comment),
				CreateUserID: cu.String,
			}
			if a.Row.AlertDate, err = r.parse(time.DateOnly, alertDate); err != nil {
				return nil, err
			}
			if expiry.Valid {
				t, err := r.parse(time.DateOnly, expiry)
				if err != nil {
					return nil, err
				}
				a.Row.ExpiryDate = &t
			}
			if a.Row.CreateDatetime, err = r.parse(time.DateTime, created); err != nil {
				return nil, err
			}
			a.DPSAlertID = dpsID.String
			a.MappingDeleted = mapDeleted.Int64 != 0
		}
		if out, err = groupNOMIS(out, pn, book.Valid, a); err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading NOMIS alerts on Oracle: %w", err)
	}
	return out, nil
}

// parse reads a TO_CHAR date of layout in r's zone; NULL is the zero time.
func (r *oracleReader) parse(layout string, s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(layout, s.String, r.loc)
	if err != nil {
		return time.Time{}, fmt.Errorf("reading NOMIS alerts on Oracle: date %q: %w", s.String, err)
	}
	return t, nil
}
