package nomis

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
)

// Resync requests. A prisoner resync can also be asked for from outside the
// capture (alertsync dlq redrive --stage capture.nomis) by a row of the
// journal itself: TABLE_NAME alertsync_resync_request, OPERATION I, NEW_ROW a JSON
// object naming the prisoner (ResyncRequest). The capture reads it in commit
// order with the other rows and schedules the resync as a change calling for
// one would (debounced by capture.resync_delay, stored as pending in the
// transaction that deletes the row), and publishes no change record for it.
// So a request is as safe as any journal row: once committed it is neither
// lost nor run before the changes committed ahead of it (an initial load
// folds it in, with every journal row it reflects: its prisoner is in the
// load unless it has no current booking).

// TableResyncRequest is the TABLE_NAME of a resync request in the journal.
const TableResyncRequest = "alertsync_resync_request"

// ReasonRedrive is the reason of the resyncs dlq redrive asks for.
const ReasonRedrive = "REDRIVE"

// RequestModule is the MODULE_NAME of the journal rows of resync requests
// (never DPS_SYNCHRONISATION: the sync's own writes are dropped).
const RequestModule = "alertsync dlq"

// ResyncRequest names the prisoner to resync by prison number, offender id
// or booking id (the first one set is used; the capture looks the others up
// when it reads the request), and why.
type ResyncRequest struct {
	OffenderNo string `json:"offender_id_display,omitempty"`
	OffenderID int64  `json:"offender_id,omitempty"`
	BookID     int64  `json:"offender_book_id,omitempty"`
	Reason     string `json:"reason"`
}

// String names the prisoner of r as an operator reads it: "prisoner
// <number>", "offender <id>" or "booking <id>".
func (r ResyncRequest) String() string {
	switch {
	case r.OffenderNo != "":
		return "prisoner " + r.OffenderNo
	case r.OffenderID != 0:
		return fmt.Sprintf("offender %d", r.OffenderID)
	}
	return fmt.Sprintf("booking %d", r.BookID)
}

// errNoPrisoner: a request names no prisoner.
var errNoPrisoner = errors.New("names no prisoner (offender_id_display, offender_id or offender_book_id)")

// Check reports whether r can be written: a prisoner named, and a reason
// the snapshot schema has (not UNKNOWN or INITIAL_LOAD, which only the
// capture gives).
func (r ResyncRequest) Check() error {
	if r.OffenderNo == "" && r.OffenderID <= 0 && r.BookID <= 0 {
		return errNoPrisoner
	}
	if r.OffenderNo != "" && !prisonNumber(r.OffenderNo) {
		return errors.New("offender_id_display is not a prison number")
	}
	if r.OffenderID < 0 || r.BookID < 0 {
		return errors.New("offender_id and offender_book_id must be positive")
	}
	if r.Reason == "UNKNOWN" || r.Reason == ReasonInitialLoad || !slices.Contains(reasonSymbols, r.Reason) {
		return fmt.Errorf("reason must be one of the snapshot reasons a request may give (%s)", ReasonRedrive)
	}
	return nil
}

// prisonNumber reports whether s looks like an OFFENDER_ID_DISPLAY: 1-10
// letters and digits (it is logged, so nothing else passes).
func prisonNumber(s string) bool {
	if len(s) == 0 || len(s) > 10 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Image returns the NEW_ROW of r's journal row.
func (r ResyncRequest) Image() ([]byte, error) {
	if err := r.Check(); err != nil {
		return nil, err
	}
	return json.Marshal(r)
}

// decodeRequest checks a journal row of TableResyncRequest. Errors are
// *RowError naming fields, never values.
func decodeRequest(r *JournalRow) (*change, error) {
	if r.Operation != "I" || r.New == nil || r.Old != nil {
		return nil, &RowError{Kind: KindOperation, Reason: "a resync request must be an insert with new_row only"}
	}
	dec := json.NewDecoder(bytes.NewReader(r.New))
	dec.DisallowUnknownFields()
	var req ResyncRequest
	if err := dec.Decode(&req); err != nil {
		return nil, &RowError{Kind: KindMalformed, Image: "new_row", Reason: "is not a resync request object"}
	}
	if err := req.Check(); err != nil {
		return nil, &RowError{Kind: KindBadValue, Image: "new_row", Reason: "resync request " + err.Error()}
	}
	return &change{row: r, table: requestTable, op: opCreate, request: &req}, nil
}

// requestTable stands for the journal rows of resync requests: no columns,
// no topic.
var requestTable = &table{name: TableResyncRequest}

// requestKey is the alert key whose context resolves a request by booking:
// the booking with no alert (AlertContexts gives its prison number).
func (r *ResyncRequest) requestKey() (AlertKey, bool) {
	if r.OffenderNo != "" || r.OffenderID != 0 {
		return AlertKey{}, false
	}
	return AlertKey{BookID: r.BookID}, true
}

// requestTrigger returns the resync a request calls for; ok is false when
// it names a booking no offender has now.
func (r *ResyncRequest) requestTrigger(contexts map[AlertKey]AlertContext) (resyncTrigger, bool) {
	switch {
	case r.OffenderNo != "":
		return resyncTrigger{offenderNo: r.OffenderNo, reason: r.Reason}, true
	case r.OffenderID != 0:
		return resyncTrigger{offenderID: r.OffenderID, reason: r.Reason}, true
	}
	k, _ := r.requestKey()
	if c := contexts[k]; c.OffenderNo != nil {
		return resyncTrigger{offenderNo: *c.OffenderNo, reason: r.Reason}, true
	}
	return resyncTrigger{}, false
}

// checkRequests checks every request, naming the first bad one.
func checkRequests(reqs []ResyncRequest) error {
	for _, r := range reqs {
		if err := r.Check(); err != nil {
			return fmt.Errorf("resync request for %s: %w", r, err)
		}
	}
	return nil
}

// requestImages returns the NEW_ROW of each request, checked.
func requestImages(reqs []ResyncRequest) ([]string, error) {
	out := make([]string, len(reqs))
	for i, r := range reqs {
		img, err := r.Image()
		if err != nil {
			return nil, fmt.Errorf("resync request for %s: %w", r, err)
		}
		out[i] = string(img)
	}
	return out, nil
}
