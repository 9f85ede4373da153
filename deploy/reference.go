package deploy

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// LocalTimeLayout is the layout of reference-data timestamps: wall-clock
// Europe/London local time without zone, as DPS `timestamp` columns and NOMIS
// DATE columns hold it.
const LocalTimeLayout = "2006-01-02 15:04:05"

// SeedCreatedAt and SeedUser are the created_at and created_by (and
// deactivated_by) that seeded reference rows carry.
const (
	SeedCreatedAt = "2024-02-01 00:00:00"
	SeedUser      = "OMS_OWNER"
)

// NOMIS REFERENCE_CODES domains of the alert reference data: a type is a
// code of domain ALERT; an alert code is a code of domain ALERT_CODE whose
// PARENT_DOMAIN is ALERT and PARENT_CODE its type.
const (
	NOMISAlertTypeDomain = "ALERT"
	NOMISAlertCodeDomain = "ALERT_CODE"
)

// AlertType is a parent grouping of alert codes (NOMIS domain ALERT).
type AlertType struct {
	Code         string // 1–12 chars, unique
	Description  string // at most 40 chars
	ListSequence int
	// DeactivatedAt is empty for an active type, else a LocalTimeLayout
	// timestamp (Europe/London wall clock).
	DeactivatedAt string
}

// Active reports whether the type is not deactivated.
func (t AlertType) Active() bool { return t.DeactivatedAt == "" }

// AlertCode is an alert code (NOMIS domain ALERT_CODE, parent = its type).
type AlertCode struct {
	TypeCode     string // the parent AlertType's Code
	Code         string // 1–12 chars, unique across all codes
	Description  string // at most 40 chars
	Restricted   bool   // only privileged DPS users may administer alerts with it
	ListSequence int    // order within its type
	// DeactivatedAt is empty for an active code, else a LocalTimeLayout
	// timestamp (Europe/London wall clock).
	DeactivatedAt string
}

// Active reports whether the code is not deactivated.
func (c AlertCode) Active() bool { return c.DeactivatedAt == "" }

type reference struct {
	types []AlertType
	codes []AlertCode
}

var loadReference = sync.OnceValues(func() (reference, error) {
	types, err := parseTypes(mustRead("reference/alert_types.csv"))
	if err != nil {
		return reference{}, fmt.Errorf("parsing reference/alert_types.csv: %w", err)
	}
	codes, err := parseCodes(mustRead("reference/alert_codes.csv"), types)
	if err != nil {
		return reference{}, fmt.Errorf("parsing reference/alert_codes.csv: %w", err)
	}
	return reference{types: types, codes: codes}, nil
})

func mustReference() reference {
	ref, err := loadReference()
	if err != nil {
		// The data is embedded at build time and checked by the package's tests.
		panic("deploy: " + err.Error())
	}
	return ref
}

// AlertTypes returns the alert types in file order (a fresh copy).
func AlertTypes() []AlertType {
	return append([]AlertType(nil), mustReference().types...)
}

// AlertCodes returns the alert codes in file order (a fresh copy).
func AlertCodes() []AlertCode {
	return append([]AlertCode(nil), mustReference().codes...)
}

func readCSV(text string, header []string) ([][]string, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = len(header)
	head, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("reading header: %w", err)
	}
	if strings.Join(head, ",") != strings.Join(header, ",") {
		return nil, fmt.Errorf("header is %q, want %q", head, header)
	}
	var rows [][]string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return rows, nil
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, rec)
	}
}

func checkCodeAndDescription(code, description string) error {
	if n := utf8.RuneCountInString(code); n < 1 || n > 12 {
		return fmt.Errorf("code %q: length %d, want 1–12", code, n)
	}
	if n := utf8.RuneCountInString(description); n < 1 || n > 40 {
		return fmt.Errorf("code %q: description length %d, want 1–40", code, n)
	}
	return nil
}

func checkDeactivatedAt(code, s string) error {
	if s == "" {
		return nil
	}
	if _, err := time.Parse(LocalTimeLayout, s); err != nil {
		return fmt.Errorf("code %q: deactivated_at: %w", code, err)
	}
	return nil
}

func parseTypes(text string) ([]AlertType, error) {
	rows, err := readCSV(text, []string{"code", "description", "list_sequence", "deactivated_at"})
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var types []AlertType
	for i, r := range rows {
		line := i + 2
		seq, err := strconv.Atoi(r[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: list_sequence: %w", line, err)
		}
		t := AlertType{Code: r[0], Description: r[1], ListSequence: seq, DeactivatedAt: r[3]}
		if err := checkCodeAndDescription(t.Code, t.Description); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := checkDeactivatedAt(t.Code, t.DeactivatedAt); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if seen[t.Code] {
			return nil, fmt.Errorf("line %d: duplicate type %q", line, t.Code)
		}
		seen[t.Code] = true
		types = append(types, t)
	}
	return types, nil
}

func parseCodes(text string, types []AlertType) ([]AlertCode, error) {
	rows, err := readCSV(text, []string{"alert_type", "code", "description", "restricted", "list_sequence", "deactivated_at"})
	if err != nil {
		return nil, err
	}
	known := map[string]bool{}
	for _, t := range types {
		known[t.Code] = true
	}
	seen := map[string]bool{}
	var codes []AlertCode
	for i, r := range rows {
		line := i + 2
		restricted, err := strconv.ParseBool(r[3])
		if err != nil {
			return nil, fmt.Errorf("line %d: restricted: %w", line, err)
		}
		seq, err := strconv.Atoi(r[4])
		if err != nil {
			return nil, fmt.Errorf("line %d: list_sequence: %w", line, err)
		}
		c := AlertCode{TypeCode: r[0], Code: r[1], Description: r[2], Restricted: restricted,
			ListSequence: seq, DeactivatedAt: r[5]}
		if !known[c.TypeCode] {
			return nil, fmt.Errorf("line %d: code %q has unknown type %q", line, c.Code, c.TypeCode)
		}
		if err := checkCodeAndDescription(c.Code, c.Description); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if err := checkDeactivatedAt(c.Code, c.DeactivatedAt); err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if seen[c.Code] {
			return nil, fmt.Errorf("line %d: duplicate code %q", line, c.Code)
		}
		seen[c.Code] = true
		codes = append(codes, c)
	}
	return codes, nil
}

// RenderDPSSeed renders dps/seed.sql from the reference data. `go generate
// ./deploy` writes its result to the file.
func RenderDPSSeed() (string, error) {
	ref, err := loadReference()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`-- Code generated by "go generate ./deploy" from deploy/reference/*.csv. DO NOT EDIT.
--
-- DPS alert reference data: alert types and codes. Timestamps are
-- Europe/London local time. Idempotent: a type or code that already exists
-- (by code) is left as it is.

INSERT INTO alert_type (code, description, list_sequence, created_at, created_by, deactivated_at, deactivated_by)
VALUES
`)
	for i, t := range ref.types {
		fmt.Fprintf(&b, "    (%s, %s, %d, %s, %s, %s, %s)%s\n",
			lit(t.Code), lit(t.Description), t.ListSequence, tsLit(SeedCreatedAt), lit(SeedUser),
			tsLit(t.DeactivatedAt), deactivatedBy(t.DeactivatedAt), sep(i, len(ref.types)))
	}
	b.WriteString(`ON CONFLICT (code) DO NOTHING;

INSERT INTO alert_code (alert_type_id, code, description, restricted, list_sequence, created_at, created_by, deactivated_at, deactivated_by)
SELECT t.id, v.code, v.description, v.restricted, v.list_sequence, v.created_at, v.created_by, v.deactivated_at, v.deactivated_by
FROM (VALUES
`)
	for i, c := range ref.codes {
		fmt.Fprintf(&b, "    (%s, %s, %s, %t, %d, %s, %s, %s, %s)%s\n",
			lit(c.TypeCode), lit(c.Code), lit(c.Description), c.Restricted, c.ListSequence,
			tsLit(SeedCreatedAt), lit(SeedUser), tsLit(c.DeactivatedAt), deactivatedBy(c.DeactivatedAt),
			sep(i, len(ref.codes)))
	}
	b.WriteString(`) AS v (type_code, code, description, restricted, list_sequence, created_at, created_by, deactivated_at, deactivated_by)
JOIN alert_type t ON t.code = v.type_code
ON CONFLICT (code) DO NOTHING;
`)
	return b.String(), nil
}

// RenderNOMISSeed renders nomis/seed.sql, the NOMIS stand-in's
// REFERENCE_CODES rows, from the same reference data as the DPS seed. `go
// generate ./deploy` writes its result to the file.
func RenderNOMISSeed() (string, error) {
	ref, err := loadReference()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	b.WriteString(`-- Code generated by "go generate ./deploy" from deploy/reference/*.csv. DO NOT EDIT.
--
-- NOMIS stand-in reference data: alert types as REFERENCE_CODES of domain
-- ALERT, alert codes as domain ALERT_CODE with PARENT_DOMAIN 'ALERT' and
-- PARENT_CODE = the type, the same codes as dps/seed.sql. A deactivated type
-- or code has ACTIVE_FLAG 'N' and EXPIRED_DATE = its deactivation time.
-- Timestamps are Europe/London local time. Idempotent: a code that already
-- exists (by domain and code) is left as it is.

INSERT INTO oms_owner.reference_codes (domain, code, description, list_seq, active_flag, expired_date, parent_domain, parent_code, create_datetime, create_user_id)
VALUES
`)
	n := len(ref.types) + len(ref.codes)
	i := 0
	for _, t := range ref.types {
		fmt.Fprintf(&b, "    (%s, %s, %s, %d, %s, %s, NULL::varchar, NULL::varchar, %s, %s)%s\n",
			lit(NOMISAlertTypeDomain), lit(t.Code), lit(t.Description), t.ListSequence, activeFlag(t.DeactivatedAt),
			tsLit(t.DeactivatedAt), tsLit(SeedCreatedAt), lit(SeedUser), sep(i, n))
		i++
	}
	for _, c := range ref.codes {
		fmt.Fprintf(&b, "    (%s, %s, %s, %d, %s, %s, %s, %s, %s, %s)%s\n",
			lit(NOMISAlertCodeDomain), lit(c.Code), lit(c.Description), c.ListSequence, activeFlag(c.DeactivatedAt),
			tsLit(c.DeactivatedAt), lit(NOMISAlertTypeDomain), lit(c.TypeCode), tsLit(SeedCreatedAt), lit(SeedUser),
			sep(i, n))
		i++
	}
	b.WriteString("ON CONFLICT (domain, code) DO NOTHING;\n")
	return b.String(), nil
}

func activeFlag(deactivatedAt string) string {
	if deactivatedAt == "" {
		return lit("Y")
	}
	return lit("N")
}

func lit(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func tsLit(s string) string {
	if s == "" {
		return "NULL::timestamp"
	}
	return "TIMESTAMP " + lit(s)
}

func deactivatedBy(deactivatedAt string) string {
	if deactivatedAt == "" {
		return "NULL::varchar"
	}
	return lit(SeedUser)
}

func sep(i, n int) string {
	if i == n-1 {
		return ""
	}
	return ","
}
