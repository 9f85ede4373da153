package dps

// maxHeld bounds the alert changes of one transaction held back for their
// users; beyond it a transaction's further alert changes are published at
// once, without a user (alertsync_capture_dps_records_without_user_total).
const maxHeld = 10_000

// txUsers joins each alert change with the user who made it. The alert row
// has no user column: the DPS service writes an audit_event row (alert_id,
// actioned_by) in the same transaction, before or after the alert row. So
// the capture holds a transaction's alert changes back until its commit and
// publishes each with the actioned_by of the transaction's audit event for
// that alert, in the record header schemas.HeaderActionedBy (the record
// value stays Debezium's). The transformer reads it as the DPS user of the
// change (DOMAIN.md: audit_event actioned_by → CREATE_/MODIFY_USER_ID).
type txUsers struct {
	held     []Change
	users    map[string]string // alert id → actioned_by, of this transaction
	overflow int               // alert changes published without waiting, this transaction
}

func newTxUsers() *txUsers { return &txUsers{users: map[string]string{}} }

// hold records the user of an audit_event change and reports whether ch,
// an alert change, is held until the commit.
func (u *txUsers) hold(ch Change) bool {
	switch ch.Rel.Table {
	case "audit_event":
		if ch.After != nil {
			id, _ := column(ch.Rel, ch.After, "alert_id").(string)
			user, _ := column(ch.Rel, ch.After, "actioned_by").(string)
			if id != "" && user != "" {
				u.users[id] = user
			}
		}
	case "alert":
		if len(u.held) < maxHeld {
			u.held = append(u.held, ch)
			return true
		}
		u.overflow++
	}
	return false
}

// of returns the user of alert change ch, "" when no audit event named one.
func (u *txUsers) of(ch Change) string {
	row := ch.After
	if row == nil {
		row = ch.Before
	}
	id, _ := column(ch.Rel, row, "id").(string)
	return u.users[id]
}

// reset forgets the transaction.
func (u *txUsers) reset() {
	clear(u.held)
	u.held = u.held[:0]
	clear(u.users)
	u.overflow = 0
}

// column returns the value of the column named name in row, nil when the
// relation has no such column.
func column(rel *Relation, row Row, name string) any {
	for i := range rel.Columns {
		if rel.Columns[i].Name == name && i < len(row) {
			return row[i]
		}
	}
	return nil
}
