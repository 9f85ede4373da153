package demo

import (
	"fmt"
	"strings"
	"time"

	"github.com/alertsync/alertsync/internal/config"
)

// envFile is the content of <data-dir>/demo.env.
type envFile struct {
	DPS, NOMIS, Brokers, Registry, Admin string
}

// String renders the file: plain names for psql and Kafka tools, and the
// ALERTSYNC_* names that point other alertsync commands at the demo.
func (e envFile) String() string {
	var b strings.Builder
	b.WriteString("# alertsync demo: connection settings (rewritten at every start). Use: set -a; . ./demo.env; set +a\n")
	for _, kv := range [][2]string{
		{"DPS_DSN", e.DPS}, {"NOMIS_DSN", e.NOMIS}, {"KAFKA_BROKERS", e.Brokers},
		{"REGISTRY_URL", e.Registry}, {"ADMIN_URL", e.Admin},
		{"ALERTSYNC_DPS_DSN", e.DPS}, {"ALERTSYNC_NOMIS_DSN", e.NOMIS}, {"ALERTSYNC_NOMIS_DIALECT", "postgres"},
		{"ALERTSYNC_KAFKA_BROKERS", e.Brokers}, {"ALERTSYNC_REGISTRY_URL", e.Registry},
		{"ALERTSYNC_TOPICS_PARTITIONS", "3"}, {"ALERTSYNC_TOPICS_REPLICATION_FACTOR", "1"},
	} {
		fmt.Fprintf(&b, "%s='%s'\n", kv[0], kv[1])
	}
	return b.String()
}

// bookingHint names a sample prisoner's current booking for the example.
type bookingHint struct {
	PrisonNumber string
	Booking      int64
}

// usage is the how-to text printed once the demo is ready.
func (e envFile) usage(path string, h bookingHint) string {
	if h.PrisonNumber == "" {
		h = bookingHint{PrisonNumber: "A1234BC", Booking: 1}
	}
	var b strings.Builder
	fmt.Fprintf(&b, `
Connection settings are in %[1]s (set -a; . %[1]s; set +a).
  DPS:      psql '%[2]s'
  NOMIS:    psql '%[3]s'
  Kafka:    kcat -b %[4]s -L        (topics: dps.public.*, nomis.oms_owner.*, alertsync.*)
  Registry: %[5]s/subjects
  Admin:    %[6]s   (/readyz, /metrics, /status)

Try it: add an alert in NOMIS for %[7]s (current booking %[8]d) …
  psql '%[3]s' -c "INSERT INTO oms_owner.offender_alerts (offender_book_id, root_offender_id, alert_seq, alert_type, alert_code, alert_status, alert_date, comment_text, caseload_type)
    SELECT b.offender_book_id, b.root_offender_id, COALESCE(MAX(a.alert_seq), 0) + 1, 'X', 'XA', 'ACTIVE', current_date, 'Added in NOMIS', 'INST'
    FROM oms_owner.offender_bookings b LEFT JOIN oms_owner.offender_alerts a USING (offender_book_id)
    WHERE b.offender_book_id = %[8]d GROUP BY b.offender_book_id, b.root_offender_id"
… and watch it arrive in DPS within a second or two:
  psql '%[2]s' -c "SELECT a.id, c.code, a.active_from, a.created_at FROM alert a JOIN alert_code c ON c.id = a.alert_code_id WHERE a.prison_number = '%[7]s' ORDER BY a.created_at"
Changes made in DPS (table alert) flow to NOMIS the same way. Ctrl-C stops the demo; starting it again resumes.
`, path, e.DPS, e.NOMIS, e.Brokers, e.Registry, e.Admin, h.PrisonNumber, h.Booking)
	return b.String()
}

// registryConfig is the registry section for the embedded registry.
func registryConfig(url string) config.Registry {
	return config.Registry{URL: url, Timeout: 10 * time.Second}
}
