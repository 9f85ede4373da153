package rules

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func dpsRow(t testing.TB) *DPSAlertRow {
	return &DPSAlertRow{
		ID:                    "0190f0a0-0000-7000-8000-00000000000a",
		AlertCodeID:           2,
		PrisonNumber:          "A1234BC",
		Description:           ptr(secret),
		AuthorisedBy:          ptr("AUTH-PERSON"),
		ActiveFrom:            DateOf(2024, time.January, 15),
		CreatedAt:             at(t, 2024, time.January, 15, 9, 30),
		PrisonCodeWhenCreated: ptr("LEI"),
		Version:               1,
	}
}

func dpsChange(t testing.TB, op Op) *DPSAlertChange {
	ch := &DPSAlertChange{
		Op:     op,
		Source: Source{Position: Position{Commit: 0x16B3748, Change: 0x16B3700}, CommitTime: at(t, 2024, time.March, 1, 12, 0)},
		User:   ptr("DPS.USER"),
	}
	switch op {
	case OpCreate, OpRead:
		ch.After = dpsRow(t)
	case OpUpdate:
		ch.Before, ch.After = dpsRow(t), dpsRow(t)
		ch.After.Description = ptr(secret + " changed")
		ch.After.LastModifiedAt = ptr(at(t, 2024, time.March, 1, 12, 0))
		ch.After.Version = 2
	case OpDelete:
		ch.Before = dpsRow(t)
	}
	return ch
}

func TestDPSAlert(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	long := strings.Repeat("a", 3999) + "é" // 4001 bytes, é straddles the limit
	tests := []struct {
		name   string
		op     Op
		mutate func(*DPSAlertChange)
		drop   Drop
		reason Reason
		check  func(*testing.T, Command)
	}{
		{name: "insert becomes upsert on the current booking", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, KindUpsert, c.Kind)
			require.Equal(t, SideDPS, c.Origin)
			require.Equal(t, SideNOMIS, c.Target)
			require.Equal(t, "A1234BC", c.PrisonNumber)
			require.Equal(t, "0190f0a0-0000-7000-8000-00000000000a", *c.DPSAlertID)
			require.Nil(t, c.NOMISBookingID, "the apply picks the current booking")
			require.Nil(t, c.NOMISAlertSeq)
			require.Nil(t, c.Before)
			require.Equal(t, Position{Commit: 0x16B3748, Change: 0x16B3700}, c.SourcePosition)
		}},
		{name: "initial snapshot read becomes upsert", op: OpRead, check: func(t *testing.T, c Command) { require.Equal(t, KindUpsert, c.Kind) }},
		{name: "update becomes upsert with before-image", op: OpUpdate, check: func(t *testing.T, c Command) {
			require.Equal(t, KindUpsert, c.Kind)
			require.Equal(t, secret, *c.Before.Description)
			require.Equal(t, secret+" changed", *c.After.Description)
			require.Equal(t, "DPS.USER", *c.After.ModifiedBy)
			require.Equal(t, at(t, 2024, time.March, 1, 12, 0), *c.After.ModifiedAt)
		}},
		{name: "soft delete becomes delete", op: OpUpdate, mutate: func(ch *DPSAlertChange) {
			ch.After.DeletedAt = ptr(at(t, 2024, time.March, 1, 12, 0))
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, KindDelete, c.Kind)
			require.Nil(t, c.After)
			require.NotNil(t, c.Before)
		}},
		{name: "update of a soft-deleted alert dropped", op: OpUpdate, mutate: func(ch *DPSAlertChange) {
			ch.Before.DeletedAt = ptr(at(t, 2024, time.February, 1, 12, 0))
			ch.After.DeletedAt = ptr(at(t, 2024, time.February, 1, 12, 0))
		}, drop: DropUnchanged},
		{name: "soft-deleted alert on initial snapshot becomes delete", op: OpRead, mutate: func(ch *DPSAlertChange) {
			ch.After.DeletedAt = ptr(at(t, 2024, time.February, 1, 12, 0))
		}, check: func(t *testing.T, c Command) { require.Equal(t, KindDelete, c.Kind) }},
		{name: "hard delete becomes delete", op: OpDelete, check: func(t *testing.T, c Command) {
			require.Equal(t, KindDelete, c.Kind)
			require.Equal(t, "HA", c.Before.Code)
			require.Equal(t, "0190f0a0-0000-7000-8000-00000000000a", *c.DPSAlertID)
		}},
		{name: "sync record dropped", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.Source.Sync = true }, drop: DropSync},
		{name: "sync soft delete dropped", op: OpUpdate, mutate: func(ch *DPSAlertChange) {
			ch.Source.Sync = true
			ch.After.DeletedAt = ptr(at(t, 2024, time.March, 1, 12, 0))
		}, drop: DropSync},
		{name: "update changing only the version dropped", op: OpUpdate, mutate: func(ch *DPSAlertChange) {
			ch.After.Description = ch.Before.Description
		}, drop: DropUnchanged},
		{name: "alert type from the code's type", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, "HA", c.After.Code)
			require.Equal(t, "H", c.After.TypeCode)
		}},
		{name: "open active_to is ACTIVE", op: OpCreate, check: func(t *testing.T, c Command) { require.Equal(t, StatusActive, c.After.Status) }},
		{name: "active_to after the commit date is ACTIVE", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.ActiveTo = ptr(DateOf(2024, time.March, 2))
		}, check: func(t *testing.T, c Command) { require.Equal(t, StatusActive, c.After.Status) }},
		{name: "active_to on the commit date is INACTIVE", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.ActiveTo = ptr(DateOf(2024, time.March, 1))
		}, check: func(t *testing.T, c Command) { require.Equal(t, StatusInactive, c.After.Status) }},
		{name: "commit date read in London", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.Source.CommitTime = time.Date(2024, time.June, 30, 23, 30, 0, 0, time.UTC) // 1 July in London
			ch.After.ActiveTo = ptr(DateOf(2024, time.July, 1))
		}, check: func(t *testing.T, c Command) { require.Equal(t, StatusInactive, c.After.Status) }},
		{name: "active_to before active_from accepted", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.ActiveTo = ptr(DateOf(2023, time.January, 1))
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, DateOf(2023, time.January, 1), *c.After.ActiveTo)
			require.Equal(t, StatusInactive, c.After.Status)
		}},
		{name: "inactive code accepted", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After.AlertCodeID = 3 },
			check: func(t *testing.T, c Command) { require.Equal(t, "XOLD", c.After.Code) }},
		{name: "description truncated to 4000 bytes on a rune boundary", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.Description = &long
		}, check: func(t *testing.T, c Command) {
			require.Equal(t, strings.Repeat("a", 3999), *c.After.Description)
		}},
		{name: "description of 4000 bytes kept", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.Description = ptr(strings.Repeat("é", 2000))
		}, check: func(t *testing.T, c Command) { require.Len(t, *c.After.Description, 4000) }},
		{name: "authorised_by truncated to 40 bytes", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.AuthorisedBy = ptr(strings.Repeat("ü", 40))
		}, check: func(t *testing.T, c Command) { require.Equal(t, strings.Repeat("ü", 20), *c.After.AuthorisedBy) }},
		{name: "empty description becomes null", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.After.Description, ch.After.AuthorisedBy = ptr(""), ptr("")
		}, check: func(t *testing.T, c Command) {
			require.Nil(t, c.After.Description)
			require.Nil(t, c.After.AuthorisedBy)
		}},
		{name: "dates and audit fields carried", op: OpCreate, check: func(t *testing.T, c Command) {
			require.Equal(t, DateOf(2024, time.January, 15), c.After.ActiveFrom)
			require.Nil(t, c.After.ActiveTo)
			require.Equal(t, at(t, 2024, time.January, 15, 9, 30), c.After.CreatedAt)
			require.Equal(t, "DPS.USER", c.After.CreatedBy)
			require.Equal(t, "LEI", *c.After.PrisonCode)
			require.Equal(t, "AUTH-PERSON", *c.After.AuthorisedBy)
		}},
		{name: "long user id shortened to 32", op: OpCreate, mutate: func(ch *DPSAlertChange) {
			ch.User = ptr("a.very.long.username@justice.gov.uk.example")
		}, check: func(t *testing.T, c Command) {
			require.Len(t, c.After.CreatedBy, 32)
			require.Equal(t, ShortenUser("a.very.long.username@justice.gov.uk.example"), c.After.CreatedBy)
		}},
		{name: "unknown user becomes the sync user", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.User = nil },
			check: func(t *testing.T, c Command) { require.Equal(t, UnknownDPSUser, c.After.CreatedBy) }},
		{name: "unknown code to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After.AlertCodeID = 99 }, reason: ReasonUnknownCode},
		{name: "missing prison number to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After.PrisonNumber = "" }, reason: ReasonMissingPrisonNumber},
		{name: "missing alert id to DLQ", op: OpUpdate, mutate: func(ch *DPSAlertChange) { ch.After.ID = "" }, reason: ReasonMissingField},
		{name: "malformed active_from to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After.ActiveFrom = DateOf(10001, 1, 1) }, reason: ReasonMalformedDate},
		{name: "malformed active_to to DLQ", op: OpUpdate, mutate: func(ch *DPSAlertChange) { ch.After.ActiveTo = ptr(Date(-800000)) }, reason: ReasonMalformedDate},
		{name: "missing created_at to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After.CreatedAt = time.Time{} }, reason: ReasonMalformedDate},
		{name: "missing commit time to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.Source.CommitTime = time.Time{} }, reason: ReasonMalformedDate},
		{name: "hard delete without before image to DLQ", op: OpDelete, mutate: func(ch *DPSAlertChange) { ch.Before = nil }, reason: ReasonMissingImage},
		{name: "insert without after image to DLQ", op: OpCreate, mutate: func(ch *DPSAlertChange) { ch.After = nil }, reason: ReasonMissingImage},
		{name: "truncate to DLQ", op: OpTruncate, reason: ReasonUnsupportedOp},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ch := dpsChange(t, tc.op)
			if tc.mutate != nil {
				tc.mutate(ch)
			}
			cmd, drop, err := r.DPSAlert(ch)
			if tc.reason != 0 {
				wantErr(t, err, tc.reason)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.drop, drop)
			if tc.drop != DropNone {
				require.Empty(t, cmd.ID)
				return
			}
			require.NotEmpty(t, cmd.ID)
			if tc.check != nil {
				tc.check(t, cmd)
			}
		})
	}
}

// TestDPSAlertDuplicateActiveCodes: two active alerts with one code for one
// prisoner both sync (DOMAIN.md: no constraint prevents it; accept it).
func TestDPSAlertDuplicateActiveCodes(t *testing.T) {
	t.Parallel()
	r := newRules(t)
	first, second := dpsChange(t, OpCreate), dpsChange(t, OpCreate)
	second.After.ID = "0190f0a0-0000-7000-8000-00000000000b"
	second.Source.Position.Change++
	a, _, err := r.DPSAlert(first)
	require.NoError(t, err)
	b, _, err := r.DPSAlert(second)
	require.NoError(t, err)
	require.Equal(t, KindUpsert, a.Kind)
	require.Equal(t, KindUpsert, b.Kind)
	require.Equal(t, a.After.Code, b.After.Code)
	require.NotEqual(t, a.ID, b.ID)
}
