//go:build broker

package e2e

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/alertsync/alertsync/internal/testenv/pgtest"
)

// london is the wall clock both systems keep.
var london = mustZone("Europe/London")

func mustZone(name string) *time.Location {
	loc, err := time.LoadLocation(name)
	if err != nil {
		panic(err)
	}
	return loc
}

// today is the London date, as YYYY-MM-DD.
func today() string { return time.Now().In(london).Format(time.DateOnly) }

// daysFromToday is the London date n days from today, as YYYY-MM-DD.
func daysFromToday(n int) string {
	return time.Now().In(london).AddDate(0, 0, n).Format(time.DateOnly)
}

// nomisKey is a NOMIS alert's key.
type nomisKey struct {
	booking int64
	seq     int64
}

// nomisUser changes OFFENDER_ALERTS the way a NOMIS screen does: in a
// session whose module is the screen (here OIDALERT) and whose audit user
// is the user, which the stand-in's audit and journal triggers read.
type nomisUser struct {
	db   *pgtest.DB
	user string
}

// begin opens a transaction marked as the user on the screen; the caller
// commits it.
func (u nomisUser) begin(t *testing.T) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := u.db.Pool.Begin(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	_, err = tx.Exec(ctx, `SELECT set_config('nomis.audit_module_name', 'OIDALERT', true),
		set_config('nomis.audit_user_id', $1, true)`, u.user)
	require.NoError(t, err)
	return tx
}

// do runs fn in one committed transaction of the user.
func (u nomisUser) do(t *testing.T, fn func(tx pgx.Tx)) {
	t.Helper()
	tx := u.begin(t)
	fn(tx)
	require.NoError(t, tx.Commit(context.Background()))
}

// create inserts an ACTIVE alert starting today on p's current booking
// under the next ALERT_SEQ, as OIDALERT does.
func (u nomisUser) create(t *testing.T, tx pgx.Tx, p prisoner, typ, code, comment, authorised string) nomisKey {
	t.Helper()
	k := nomisKey{booking: p.booking}
	err := tx.QueryRow(context.Background(), `
INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status,
    alert_date, comment_text, authorize_person_text, caseload_id, caseload_type, create_user_id)
SELECT $1, $2, coalesce(max(alert_seq), 0) + 1, $3, $4, 'ACTIVE', $5::date, $6, $7, 'MDI', 'INST', $8
  FROM oms_owner.offender_alerts WHERE offender_book_id = $1
RETURNING alert_seq`, p.booking, p.offender, typ, code, today(), comment, authorised, u.user).Scan(&k.seq)
	require.NoError(t, err)
	return k
}

// update sets columns of an alert (set: "col = $3, col2 = $4", args from
// $3 on) with MODIFY_USER_ID and MODIFY_DATETIME, as NOMIS screens do.
func (u nomisUser) update(t *testing.T, tx pgx.Tx, k nomisKey, set string, args ...any) {
	t.Helper()
	tag, err := tx.Exec(context.Background(), `UPDATE oms_owner.offender_alerts SET `+set+`,
		modify_user_id = $`+strconv.Itoa(len(args)+3)+`, modify_datetime = date_trunc('second', now() AT TIME ZONE 'Europe/London')
		WHERE offender_book_id = $1 AND alert_seq = $2`, append(append([]any{k.booking, k.seq}, args...), u.user)...)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "NOMIS alert %v", k)
}

// remove deletes an alert (NOMIS deletes rows).
func (u nomisUser) remove(t *testing.T, tx pgx.Tx, k nomisKey) {
	t.Helper()
	tag, err := tx.Exec(context.Background(), `DELETE FROM oms_owner.offender_alerts WHERE offender_book_id = $1 AND alert_seq = $2`, k.booking, k.seq)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "NOMIS alert %v", k)
}

// dpsUser changes public.alert as the DPS alerts service does for a user:
// UUIDv7 ids, version bumped on every change, soft deletes, and one
// audit_event (source DPS, actioned_by the user) in the same transaction.
type dpsUser struct {
	db   *pgtest.DB
	user string
}

func (u dpsUser) begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := u.db.Pool.Begin(context.Background())
	require.NoError(t, err)
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func (u dpsUser) do(t *testing.T, fn func(tx pgx.Tx)) {
	t.Helper()
	tx := u.begin(t)
	fn(tx)
	require.NoError(t, tx.Commit(context.Background()))
}

// audit writes the change's audit event.
func (u dpsUser) audit(t *testing.T, tx pgx.Tx, id, action, description string, flags [4]*bool) {
	t.Helper()
	ev, err := uuid.NewV7()
	require.NoError(t, err)
	_, err = tx.Exec(context.Background(), `INSERT INTO public.audit_event (id, alert_id, action, description, actioned_at,
		actioned_by, actioned_by_display_name, source, description_updated, authorised_by_updated, active_from_updated, active_to_updated)
		VALUES ($1, $2, $3, $4, now() AT TIME ZONE 'Europe/London', $5, $6, 'DPS', $7, $8, $9, $10)`,
		ev, id, action, description, u.user, "Display "+u.user, flags[0], flags[1], flags[2], flags[3])
	require.NoError(t, err)
}

// create inserts an alert of code for prison number pn, active from today.
func (u dpsUser) create(t *testing.T, tx pgx.Tx, pn, code, description, authorised string) string {
	t.Helper()
	id, err := uuid.NewV7()
	require.NoError(t, err)
	_, err = tx.Exec(context.Background(), `INSERT INTO public.alert (id, alert_code_id, prison_number, description, authorised_by,
		active_from, created_at, prison_code_when_created, version)
		SELECT $1, c.id, $2, $3, $4, $5::date, now() AT TIME ZONE 'Europe/London', 'MDI', 0 FROM public.alert_code c WHERE c.code = $6`,
		id, pn, description, authorised, today(), code)
	require.NoError(t, err)
	u.audit(t, tx, id.String(), "CREATED", "Alert created", [4]*bool{})
	return id.String()
}

// update sets columns of alert id (set: "col = $2, …", args from $2 on),
// bumps its version and records an UPDATED event with the given flags
// (description, authorised by, active from, active to).
func (u dpsUser) update(t *testing.T, tx pgx.Tx, id string, flags [4]bool, set string, args ...any) {
	t.Helper()
	tag, err := tx.Exec(context.Background(), `UPDATE public.alert SET `+set+`,
		last_modified_at = now() AT TIME ZONE 'Europe/London', version = version + 1 WHERE id = $1 AND deleted_at IS NULL`,
		append([]any{id}, args...)...)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "DPS alert %s", id)
	u.audit(t, tx, id, "UPDATED", "Alert updated", [4]*bool{&flags[0], &flags[1], &flags[2], &flags[3]})
}

// remove soft-deletes alert id, as the service does.
func (u dpsUser) remove(t *testing.T, tx pgx.Tx, id string) {
	t.Helper()
	tag, err := tx.Exec(context.Background(), `UPDATE public.alert SET deleted_at = now() AT TIME ZONE 'Europe/London',
		last_modified_at = now() AT TIME ZONE 'Europe/London', version = version + 1 WHERE id = $1 AND deleted_at IS NULL`, id)
	require.NoError(t, err)
	require.EqualValues(t, 1, tag.RowsAffected(), "DPS alert %s", id)
	u.audit(t, tx, id, "DELETED", "Alert deleted", [4]*bool{})
}
