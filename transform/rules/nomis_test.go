package rules

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func nomisRow(t testing.TB) *NOMISAlertRow {
	return &NOMISAlertRow{
		OffenderBookID:      1001,
		AlertSeq:            3,
		AlertDate:           at(t, 2024, time.January, 15, 0, 0),
		AlertType:           "X",
		AlertCode:           "XA",
		AlertStatus:         "ACTIVE",
		AuthorizePersonText: ptr("AUTH-PERSON"),
		CommentText:         ptr(secret),
		CaseloadID:          ptr("MDI"),
		CreateUserID:        "NOMIS_USER1",
		CreateDatetime:      at(t, 2024, time.January, 15, 9, 30),
	}
}

func nomisChange(t testing.TB, op Op) *NOMISAlertChange {
	ch := &NOMISAlertChange{
		Op: op,
		Source: Source{
			Position:   Position{Commit: 500, Change: 7},
			CommitTime: at(t, 2024, time.March, 1, 12, 0),
		},
		Session: &NOMISSession{Module: ptr("OIDALERT"), User: ptr("SESSION_USER")},
		Context: &NOMISContext{OffenderNo: ptr("A1234BC"), BookingSeq: ptr(int32(1)), DPSAlertID: ptr("0190f0a0-0000-7000-8000-000000000001")},
	}
	switch op {
	case OpCreate, OpRead:
		ch.After = nomisRow(t)
	case OpUpdate:
		ch.Before, ch.After = nomisRow(t), nomisRow(t)
		ch.After.CommentText = ptr(secret + " changed")
		ch.After.ModifyUserID = ptr("NOMIS_USER2")
		ch.After.ModifyDatetime = ptr(at(t, 2024, time.March, 1, 11, 59))
	case OpDelete:
		ch.Before = nomisRow(t)
	}
	if op == OpRead {
		ch.Session = nil
	}
	return ch
}

func TestNOMISAlert(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	tests := []struct {
		name   string
		op     Op
		mutate func(*NOMISAlertChange)
		drop   Drop
		reason Reason // non-zero: a DLQ error
		check  func(*testing.T, Command)
	}{
		{name: "insert becomes upsert for DPS", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, KindUpsert, c.Kind)
			require.Equal(t, SideNOMIS, c.Origin)
			require.Equal(t, SideDPS, c.Target)
			require.Equal(t, "A1234BC", c.PrisonNumber)
			require.Equal(t, Position{Commit: 500, Change: 7}, c.SourcePosition)
			require.Equal(t, at(t, 2024, time.March, 1, 12, 0), c.SourceCommitTime)
			require.Nil(t, c.Before)
			require.NotNil(t, c.After)
			require.Equal(t, StatusActive, c.After.Status)
		}},
		{name: "command carries the keys it knows", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, int64(1001), *c.NOMISBookingID)
			require.Equal(t, int32(3), *c.NOMISAlertSeq)
			require.Equal(t, "0190f0a0-0000-7000-8000-000000000001", *c.DPSAlertID)
		}},
		{name: "unmapped alert has no DPS id", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.Context.DPSAlertID = nil },
			check: func(t *testing.T, c Command) { require.Nil(t, c.DPSAlertID) }},
		{name: "update becomes upsert with before-image", op: OpUpdate, check: func(t *testing.T, c Command) {
			require.Equal(t, KindUpsert, c.Kind)
			require.NotNil(t, c.Before)
			require.Equal(t, secret, *c.Before.Description)
			require.Equal(t, secret+" changed", *c.After.Description)
		}},
		{name: "delete becomes delete with before-image", op: OpDelete, check: func(t *testing.T, c Command) {
			require.Equal(t, KindDelete, c.Kind)
			require.Nil(t, c.After)
			require.NotNil(t, c.Before)
			require.Equal(t, "XA", c.Before.Code)
			require.Equal(t, int32(3), *c.NOMISAlertSeq)
		}},
		{name: "initial load read becomes upsert", op: OpRead, check: func(t *testing.T, c Command) {
			require.Equal(t, KindUpsert, c.Kind)
			require.NotNil(t, c.After)
		}},
		{name: "sync record dropped", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.Source.Sync = true
			ch.Session.Module = ptr("DPS_SYNCHRONISATION")
		}, drop: DropSync},
		{name: "sync delete dropped", op: OpDelete, mutate: func(ch *NOMISAlertChange) { ch.Source.Sync = true }, drop: DropSync},
		{name: "booking copy insert dropped", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.Session.AdditionalInfo = ptr(BookingCopyInfo)
		}, drop: DropBookingCopy},
		{name: "booking copy info on an update still syncs", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.Session.AdditionalInfo = ptr(BookingCopyInfo)
		}, check: func(t *testing.T, c Command) { require.Equal(t, KindUpsert, c.Kind) }},
		{name: "older booking dropped", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.Context.BookingSeq = ptr(int32(2)) }, drop: DropNotCurrentBooking},
		{name: "older booking delete dropped", op: OpDelete, mutate: func(ch *NOMISAlertChange) { ch.Context.BookingSeq = ptr(int32(3)) }, drop: DropNotCurrentBooking},
		{name: "booking gone dropped", op: OpDelete, mutate: func(ch *NOMISAlertChange) {
			ch.Context.BookingSeq, ch.Context.OffenderNo = nil, nil
		}, drop: DropNotCurrentBooking},
		{name: "no context dropped as not current", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.Context = nil }, drop: DropNotCurrentBooking},
		{name: "missing prison number to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.Context.OffenderNo = nil }, reason: ReasonMissingPrisonNumber},
		{name: "empty prison number to DLQ", op: OpUpdate, mutate: func(ch *NOMISAlertChange) { ch.Context.OffenderNo = ptr("") }, reason: ReasonMissingPrisonNumber},
		{name: "unknown code passes with its NOMIS type (apply dps decides)", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.AlertCode = "NOPE" },
			check: func(t *testing.T, c Command) {
				require.Equal(t, KindUpsert, c.Kind)
				require.Equal(t, "NOPE", c.After.Code)
				require.Equal(t, "X", c.After.TypeCode)
			}},
		{name: "unknown code without a type to DLQ", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertCode, ch.After.AlertType = "NOPE", ""
		}, reason: ReasonUnknownCode},
		{name: "comment of 4000 characters (8000 bytes) accepted", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.CommentText = ptr(strings.Repeat("é", MaxDescriptionChars))
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, MaxDescriptionChars, utf8.RuneCountInString(*c.After.Description))
		}},
		{name: "comment longer than DPS holds to DLQ", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.CommentText = ptr(strings.Repeat("x", MaxDescriptionChars+1))
		}, reason: ReasonTextTooLong},
		{name: "over-long comment in the before-image only: the shortening syncs", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.Before.CommentText = ptr(strings.Repeat("x", MaxDescriptionChars+1))
			ch.After.CommentText = ptr("shortened")
		}, check: func(t *testing.T, c Command) { require.Equal(t, "shortened", *c.After.Description) }},
		{name: "unknown code on delete still deletes", op: OpDelete, mutate: func(ch *NOMISAlertChange) { ch.Before.AlertCode = "NOPE" },
			check: func(t *testing.T, c Command) { require.Equal(t, KindDelete, c.Kind) }},
		{name: "inactive code accepted", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.AlertCode = "XOLD" },
			check: func(t *testing.T, c Command) { require.Equal(t, "XOLD", c.After.Code) }},
		{name: "missing alert type taken from the code", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.AlertType = "" },
			check: func(t *testing.T, c Command) { require.Equal(t, "X", c.After.TypeCode) }},
		{name: "missing alert date to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.AlertDate = time.Time{} }, reason: ReasonMalformedDate},
		{name: "alert date beyond year 9999 to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertDate = time.Date(10000, 1, 2, 0, 0, 0, 0, time.UTC)
		}, reason: ReasonMalformedDate},
		{name: "malformed expiry date to DLQ", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.ExpiryDate = ptr(time.Date(-5, 1, 2, 0, 0, 0, 0, time.UTC))
		}, reason: ReasonMalformedDate},
		{name: "missing commit time to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.Source.CommitTime = time.Time{} }, reason: ReasonMalformedDate},
		{name: "malformed status to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.AlertStatus = "active" }, reason: ReasonMalformedStatus},
		{name: "missing after image to DLQ", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After = nil }, reason: ReasonMissingImage},
		{name: "update without before image to DLQ", op: OpUpdate, mutate: func(ch *NOMISAlertChange) { ch.Before = nil }, reason: ReasonMissingImage},
		{name: "delete without before image to DLQ", op: OpDelete, mutate: func(ch *NOMISAlertChange) { ch.Before = nil }, reason: ReasonMissingImage},
		{name: "truncate op to DLQ", op: OpTruncate, reason: ReasonUnsupportedOp},
		{name: "alert date becomes active_from with time dropped", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertDate = at(t, 2024, time.January, 15, 23, 59)
		}, check: func(t *testing.T, c Command) { require.Equal(t, DateOf(2024, time.January, 15), c.After.ActiveFrom) }},
		{name: "alert date read as the London date in summer time", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			// Midnight BST on 1 July is 23:00 UTC on 30 June.
			ch.After.AlertDate = time.Date(2024, time.June, 30, 23, 0, 0, 0, time.UTC)
		}, check: func(t *testing.T, c Command) { require.Equal(t, DateOf(2024, time.July, 1), c.After.ActiveFrom) }},
		{name: "expiry date becomes active_to", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.ExpiryDate = ptr(at(t, 2024, time.August, 31, 0, 0))
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, DateOf(2024, time.August, 31), *c.After.ActiveTo)
			require.Equal(t, StatusActive, c.After.Status)
		}},
		{name: "no expiry date leaves active_to open", op: OpCreate, check: func(t *testing.T, c Command) { require.Nil(t, c.After.ActiveTo) }},
		{name: "INACTIVE without expiry gets the commit date", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertStatus = "INACTIVE"
			ch.Source.CommitTime = time.Date(2024, time.June, 30, 23, 30, 0, 0, time.UTC) // 1 July in London
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, StatusInactive, c.After.Status)
			require.Equal(t, DateOf(2024, time.July, 1), *c.After.ActiveTo)
			require.Nil(t, c.Before.ActiveTo)
			require.Equal(t, StatusActive, c.Before.Status)
		}},
		{name: "INACTIVE without expiry inserted gets the commit date", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertStatus = "INACTIVE"
		}, check: func(t *testing.T, c Command) { require.Equal(t, DateOf(2024, time.March, 1), *c.After.ActiveTo) }},
		{name: "INACTIVE without expiry already inactive stays open-ended", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.Before.AlertStatus, ch.After.AlertStatus = "INACTIVE", "INACTIVE"
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, StatusInactive, c.After.Status)
			require.Nil(t, c.After.ActiveTo)
			require.Nil(t, c.Before.ActiveTo)
		}},
		{name: "INACTIVE without expiry on initial load stays open-ended", op: OpRead, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertStatus = "INACTIVE"
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, StatusInactive, c.After.Status)
			require.Nil(t, c.After.ActiveTo)
		}},
		{name: "INACTIVE with expiry keeps the expiry", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.AlertStatus = "INACTIVE"
			ch.After.ExpiryDate = ptr(at(t, 2024, time.February, 1, 0, 0))
		}, check: func(t *testing.T, c Command) { require.Equal(t, DateOf(2024, time.February, 1), *c.After.ActiveTo) }},
		{name: "active_to before active_from accepted", op: OpCreate, mutate: func(ch *NOMISAlertChange) {
			ch.After.ExpiryDate = ptr(at(t, 2023, time.January, 1, 0, 0))
		}, check: func(t *testing.T, c Command) {
			require.Less(t, *c.After.ActiveTo, c.After.ActiveFrom)
		}},
		{name: "comment becomes description and authorize person authorised_by", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, secret, *c.After.Description)
			require.Equal(t, "AUTH-PERSON", *c.After.AuthorisedBy)
			require.Equal(t, "MDI", *c.After.PrisonCode)
		}},
		{name: "null comment stays null", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.CommentText, ch.After.AuthorizePersonText = nil, nil },
			check: func(t *testing.T, c Command) {
				require.Nil(t, c.After.Description)
				require.Nil(t, c.After.AuthorisedBy)
			}},
		{name: "NOMIS users become audit users", op: OpUpdate, check: func(t *testing.T, c Command) {
			require.Equal(t, "NOMIS_USER1", c.After.CreatedBy)
			require.Equal(t, at(t, 2024, time.January, 15, 9, 30), c.After.CreatedAt)
			require.Equal(t, "NOMIS_USER2", *c.After.ModifiedBy)
			require.Equal(t, at(t, 2024, time.March, 1, 11, 59), *c.After.ModifiedAt)
		}},
		{name: "update without modify user takes the session user and commit time", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.ModifyUserID, ch.After.ModifyDatetime = nil, nil
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, "SESSION_USER", *c.After.ModifiedBy)
			require.Equal(t, at(t, 2024, time.March, 1, 12, 0), *c.After.ModifiedAt)
		}},
		{name: "insert without create user takes the session user", op: OpCreate, mutate: func(ch *NOMISAlertChange) { ch.After.CreateUserID = "" },
			check: func(t *testing.T, c Command) { require.Equal(t, "SESSION_USER", c.After.CreatedBy) }},
		{name: "no create user and no session to DLQ", op: OpRead, mutate: func(ch *NOMISAlertChange) { ch.After.CreateUserID = "" }, reason: ReasonMissingField},
		{name: "update changing nothing mapped dropped", op: OpUpdate, mutate: func(ch *NOMISAlertChange) {
			ch.After.CommentText = ch.Before.CommentText // only the modify columns differ
		}, drop: DropUnchanged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := nomisChange(t, tc.op)
			if tc.mutate != nil {
				tc.mutate(ch)
			}
			cmd, drop, err := r.NOMISAlert(ch)
			if tc.reason != 0 {
				wantErr(t, err, tc.reason)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.drop, drop)
			if tc.drop != DropNone {
				require.Empty(t, cmd.ID, "a dropped record yields no command")
				return
			}
			require.Equal(t, uuid.Version(5), uuid.MustParse(cmd.ID).Version())
			if tc.check != nil {
				tc.check(t, cmd)
			}
		})
	}
}

func TestNOMISAlertCommandIDDeterministic(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	a, _, err := r.NOMISAlert(nomisChange(t, OpUpdate))
	require.NoError(t, err)
	b, _, err := r.NOMISAlert(nomisChange(t, OpUpdate))
	require.NoError(t, err)
	require.Equal(t, a.ID, b.ID, "a repeated record carries the same command id")

	later := nomisChange(t, OpUpdate)
	later.Source.Position.Change++
	c, _, err := r.NOMISAlert(later)
	require.NoError(t, err)
	require.NotEqual(t, a.ID, c.ID)

	del, _, err := r.NOMISAlert(nomisChange(t, OpDelete))
	require.NoError(t, err)
	require.NotEqual(t, a.ID, del.ID, "delete and create of one position (a key change) differ")
}

func TestNOMISSnapshot(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	snap := func() *NOMISSnapshot {
		inactive := nomisRow(t)
		inactive.AlertSeq, inactive.AlertStatus = 4, "INACTIVE"
		dup := nomisRow(t)
		dup.AlertSeq = 5 // same active code twice (a merge)
		return &NOMISSnapshot{
			OffenderNo: "A1234BC",
			Reason:     "NEW_BOOKING",
			Source:     Source{Position: Position{Commit: 900, Change: 1}, CommitTime: at(t, 2024, time.April, 2, 8, 0)},
			Alerts: []NOMISSnapshotAlert{
				{Position: Position{Commit: 900, Change: 1}, DPSAlertID: ptr("0190f0a0-0000-7000-8000-000000000001"), Row: *nomisRow(t)},
				{Position: Position{Commit: 900, Change: 1}, Row: *inactive},
				{Position: Position{Commit: 900, Change: 1}, Row: *dup},
			},
		}
	}
	tests := []struct {
		name   string
		mutate func(*NOMISSnapshot)
		reason Reason
		check  func(*testing.T, Command)
	}{
		{name: "snapshot becomes one replace_prisoner", check: func(t *testing.T, c Command) {
			require.Equal(t, KindReplacePrisoner, c.Kind)
			require.Equal(t, SideDPS, c.Target)
			require.Equal(t, "A1234BC", c.PrisonNumber)
			require.Equal(t, "NEW_BOOKING", *c.Reason)
			require.Nil(t, c.After)
			require.Len(t, c.Alerts, 3)
			require.Equal(t, "0190f0a0-0000-7000-8000-000000000001", *c.Alerts[0].DPSAlertID)
			require.Nil(t, c.Alerts[1].DPSAlertID)
			require.Equal(t, int32(4), *c.Alerts[1].NOMISAlertSeq)
			require.Equal(t, int64(1001), *c.Alerts[1].NOMISBookingID)
			require.Equal(t, Position{Commit: 900, Change: 1}, c.Alerts[0].Position)
		}},
		{name: "snapshot keeps duplicate active codes", check: func(t *testing.T, c Command) {
			require.Equal(t, c.Alerts[0].State.Code, c.Alerts[2].State.Code)
			require.Equal(t, StatusActive, c.Alerts[2].State.Status)
		}},
		{name: "snapshot INACTIVE without expiry stays open-ended", check: func(t *testing.T, c Command) {
			require.Equal(t, StatusInactive, c.Alerts[1].State.Status)
			require.Nil(t, c.Alerts[1].State.ActiveTo)
		}},
		{name: "merged-away prison number becomes an empty replace_prisoner", mutate: func(s *NOMISSnapshot) {
			s.Reason, s.Alerts = "MERGE", nil
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, KindReplacePrisoner, c.Kind)
			require.Equal(t, "MERGE", *c.Reason)
			require.NotNil(t, c.Alerts)
			require.Empty(t, c.Alerts)
		}},
		{name: "snapshot without prison number to DLQ", mutate: func(s *NOMISSnapshot) { s.OffenderNo = "" }, reason: ReasonMissingPrisonNumber},
		{name: "snapshot with a comment longer than DPS holds to DLQ", mutate: func(s *NOMISSnapshot) {
			s.Alerts[1].Row.CommentText = ptr(strings.Repeat("x", MaxDescriptionChars+1))
		}, reason: ReasonTextTooLong},
		{name: "snapshot with an unknown code passes with its NOMIS type (apply dps decides)", mutate: func(s *NOMISSnapshot) { s.Alerts[1].Row.AlertCode = "NOPE" },
			check: func(t *testing.T, c Command) { require.Equal(t, "NOPE", c.Alerts[1].State.Code) }},
		{name: "snapshot with an unknown code and no type to DLQ", mutate: func(s *NOMISSnapshot) {
			s.Alerts[1].Row.AlertCode, s.Alerts[1].Row.AlertType = "NOPE", ""
		}, reason: ReasonUnknownCode},
		{name: "snapshot with a malformed date to DLQ", mutate: func(s *NOMISSnapshot) { s.Alerts[2].Row.AlertDate = time.Time{} }, reason: ReasonMalformedDate},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := snap()
			if tc.mutate != nil {
				tc.mutate(s)
			}
			cmd, drop, err := r.NOMISSnapshot(s)
			if tc.reason != 0 {
				wantErr(t, err, tc.reason)
				return
			}
			require.NoError(t, err)
			require.Equal(t, DropNone, drop)
			require.NotEmpty(t, cmd.ID)
			tc.check(t, cmd)
		})
	}
}
