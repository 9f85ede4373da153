package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzRoundTrip: a valid NOMIS alert mapped to DPS and back equals the
// original in every field the mapping carries. The two applies are
// simulated (dpsRowOf, nomisRowOf) as the schema contracts describe them.
//
// Carried: ALERT_CODE, ALERT_TYPE, the dates of ALERT_DATE and EXPIRY_DATE,
// ALERT_STATUS, COMMENT_TEXT, AUTHORIZE_PERSON_TEXT, CASELOAD_ID,
// CREATE_USER_ID (through DPS's audit user), CREATE_DATETIME.
//
// Lossy (not compared): the time of day of ALERT_DATE and EXPIRY_DATE;
// EXPIRY_DATE of an INACTIVE alert without one (comes back as the commit
// date, checked below); ALERT_STATUS that disagrees with EXPIRY_DATE (DPS
// derives it from active_to); OFFENDER_BOOK_ID and ALERT_SEQ (linked by the
// mapping, allocated by apply nomis); VERIFIED_FLAG, CASELOAD_TYPE,
// ROOT_OFFENDER_ID, CREATE_DATE, the AUDIT_* columns; MODIFY_USER_ID and
// MODIFY_DATETIME (DPS keeps them in audit_event only).
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(0), int32(19737), int32(3600), true, int32(200), false, "comment", "Auth Person", "MDI", "NOMIS_USER", int64(1705311000000000), int32(50))
	f.Add(uint8(1), int32(-5000), int32(86399), false, int32(0), true, "", "", "", "", int64(0), int32(0))
	f.Add(uint8(2), int32(19904), int32(0), true, int32(-30), false, strings.Repeat("é", 40), strings.Repeat("ü", 30), "LEIWWWW", "U", int64(-1), int32(1))
	loc := london(f)
	r := newRules(f)
	codes := []Code{{ID: 1, Code: "XA", Type: "X"}, {ID: 2, Code: "HA", Type: "H"}, {ID: 3, Code: "XOLD", Type: "X"}}
	f.Fuzz(func(t *testing.T, codeIdx uint8, alertDay, alertSec int32, hasExpiry bool, expiryOffset int32,
		inactiveOpen bool, comment, authorised, caseload, user string, createMicros int64, commitOffset int32) {
		// Build a valid NOMIS alert.
		code := codes[int(codeIdx)%len(codes)]
		day := Date(clampI(alertDay, -25000, 47000)) // 1901 .. 2098
		sec := time.Duration(clampI(alertSec, 0, 86399)) * time.Second
		y, m, d := day.Time().Date()
		row := &NOMISAlertRow{
			OffenderBookID: 1001, AlertSeq: 1,
			AlertDate: time.Date(y, m, d, 0, 0, 0, 0, loc).Add(sec).UTC(),
			AlertType: code.Type, AlertCode: code.Code,
			CommentText:         nomisText(comment, MaxCommentBytes),
			AuthorizePersonText: nomisText(authorised, MaxAuthorisedBytes),
			CaseloadID:          nomisText(caseload, 6),
			CreateUserID:        "OMS_OWNER",
			CreateDatetime:      time.UnixMicro(clampI(createMicros, -2e15, 4e15)).UTC(),
		}
		if u := nomisText(user, MaxNOMISUserBytes); u != nil {
			row.CreateUserID = *u
		}
		commit := time.Date(y, m, d, 12, 0, 0, 0, loc).AddDate(0, 0, int(clampI(commitOffset, 0, 4000)))
		commitDay := DateIn(commit, loc)
		switch {
		case hasExpiry:
			e := day + Date(clampI(expiryOffset, -3000, 3000))
			ey, em, ed := e.Time().Date()
			row.ExpiryDate = ptr(time.Date(ey, em, ed, 0, 0, 0, 0, loc).UTC())
			row.AlertStatus = "ACTIVE"
			if e <= commitDay {
				row.AlertStatus = "INACTIVE"
			}
		case inactiveOpen:
			row.AlertStatus = "INACTIVE"
		default:
			row.AlertStatus = "ACTIVE"
		}

		// NOMIS → DPS.
		toDPS, drop, err := r.NOMISAlert(&NOMISAlertChange{
			Op: OpCreate, After: row,
			Source:  Source{Position: Position{Commit: 10, Change: 1}, CommitTime: commit},
			Session: &NOMISSession{Module: ptr("OIDALERT"), User: ptr(row.CreateUserID)},
			Context: &NOMISContext{OffenderNo: ptr("A1234BC"), BookingSeq: ptr(int32(1))},
		})
		require.NoError(t, err)
		require.Equal(t, DropNone, drop)
		// apply dps writes the alert and its audit event; DPS → NOMIS.
		toNOMIS, drop, err := r.DPSAlert(&DPSAlertChange{
			Op: OpCreate, After: dpsRowOf(t, toDPS, code.ID),
			Source: Source{Position: Position{Commit: 20, Change: 2}, CommitTime: commit},
			User:   &toDPS.After.CreatedBy,
		})
		require.NoError(t, err)
		require.Equal(t, DropNone, drop)
		back := nomisRowOf(toNOMIS, loc)

		require.Equal(t, row.AlertCode, back.AlertCode)
		require.Equal(t, row.AlertType, back.AlertType)
		require.Equal(t, DateIn(row.AlertDate, loc), DateIn(back.AlertDate, loc))
		require.Equal(t, row.AlertStatus, back.AlertStatus)
		if row.ExpiryDate != nil {
			require.NotNil(t, back.ExpiryDate)
			require.Equal(t, DateIn(*row.ExpiryDate, loc), DateIn(*back.ExpiryDate, loc))
		} else if inactiveOpen {
			require.NotNil(t, back.ExpiryDate, "INACTIVE without expiry comes back with the commit date")
			require.Equal(t, commitDay, DateIn(*back.ExpiryDate, loc))
		} else {
			require.Nil(t, back.ExpiryDate)
		}
		require.Equal(t, row.CommentText, back.CommentText)
		require.Equal(t, row.AuthorizePersonText, back.AuthorizePersonText)
		require.Equal(t, row.CaseloadID, back.CaseloadID)
		require.Equal(t, row.CreateUserID, back.CreateUserID)
		require.True(t, row.CreateDatetime.Equal(back.CreateDatetime))
	})
}

// nomisText returns s as a NOMIS VARCHAR2(n) holds it: valid UTF-8, at
// most n bytes, NULL for empty.
func nomisText(s string, n int) *string {
	s = TruncateUTF8(strings.ToValidUTF8(s, ""), n)
	if s == "" {
		return nil
	}
	return &s
}

func clampI[T int32 | int64](v, lo, hi T) T {
	return max(lo, min(v, hi))
}

// dpsRowOf is the public.alert row apply dps writes for an upsert.
func dpsRowOf(t *testing.T, c Command, codeID int64) *DPSAlertRow {
	require.Equal(t, KindUpsert, c.Kind)
	s := c.After
	return &DPSAlertRow{
		ID: "0190f0a0-0000-7000-8000-0000000000ff", AlertCodeID: codeID, PrisonNumber: c.PrisonNumber,
		Description: s.Description, AuthorisedBy: s.AuthorisedBy, ActiveFrom: s.ActiveFrom, ActiveTo: s.ActiveTo,
		CreatedAt: s.CreatedAt, PrisonCodeWhenCreated: s.PrisonCode, Version: 1,
	}
}

// nomisRowOf is the OFFENDER_ALERTS row apply nomis writes for an upsert.
func nomisRowOf(c Command, loc *time.Location) *NOMISAlertRow {
	s := c.After
	midnight := func(d Date) time.Time {
		y, m, dd := d.Time().Date()
		return time.Date(y, m, dd, 0, 0, 0, 0, loc).UTC()
	}
	row := &NOMISAlertRow{
		AlertDate: midnight(s.ActiveFrom), AlertType: s.TypeCode, AlertCode: s.Code, AlertStatus: s.Status.String(),
		AuthorizePersonText: s.AuthorisedBy, CommentText: s.Description, CaseloadID: s.PrisonCode,
		CreateUserID: s.CreatedBy, CreateDatetime: s.CreatedAt,
	}
	if s.ActiveTo != nil {
		row.ExpiryDate = ptr(midnight(*s.ActiveTo))
	}
	return row
}
