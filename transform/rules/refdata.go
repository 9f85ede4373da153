package rules

// Code is one alert code of the reference data.
type Code struct {
	ID     int64  // alert_code.id in DPS
	Code   string // the code, 1-12 characters, as both systems write it
	Type   string // the code's parent alert type code
	Active bool   // false once deactivated; alerts with it still map
}

// Codes is the reference data the rules look alert codes up in. Its
// contract: a code is present before the first alert that uses it is mapped
// (the stream loop reads the reference topics first), and lookups are safe
// for concurrent use while the rules run.
type Codes interface {
	// CodeByID returns the code whose DPS id is id, and whether it is known.
	CodeByID(id int64) (Code, bool)
	// Lookup returns the code named code, and whether it is known.
	Lookup(code string) (Code, bool)
}

// CodeTable is an immutable Codes built once, safe for concurrent use.
type CodeTable struct {
	byID   map[int64]Code
	byCode map[string]Code
}

// NewCodeTable returns a CodeTable holding codes; a later code of the same
// id or name replaces an earlier one.
func NewCodeTable(codes ...Code) *CodeTable {
	t := &CodeTable{byID: make(map[int64]Code, len(codes)), byCode: make(map[string]Code, len(codes))}
	for _, c := range codes {
		t.byID[c.ID] = c
		t.byCode[c.Code] = c
	}
	return t
}

// CodeByID implements Codes.
func (t *CodeTable) CodeByID(id int64) (Code, bool) {
	c, ok := t.byID[id]
	return c, ok
}

// Lookup implements Codes.
func (t *CodeTable) Lookup(code string) (Code, bool) {
	c, ok := t.byCode[code]
	return c, ok
}
