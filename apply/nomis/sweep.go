package nomis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertsync/alertsync/transform/rules"
)

// The expiry sweep (DOMAIN.md, "Where we go beyond"): a DPS alert lapses
// when its active_to passes, without any change to its row, so no command
// ever tells NOMIS; the sweep sets ALERT_STATUS = 'INACTIVE' on the NOMIS
// rows of such alerts, as the sync.

// SweepUser is the NOMIS user of the expiry sweep's writes (MODIFY_USER_ID
// and nomis.audit_user_id): no DPS user made the change.
const SweepUser = SyncModule

const (
	// sweepRetries bounds the attempts of one sweep transaction that fails
	// with a transient error (a deadlock with a NOMIS user, a lost
	// connection).
	sweepRetries = 3
	// sweepMaxSleep bounds one wait of the scheduler, so that a wall clock
	// that jumps (or a machine that was suspended) delays a sweep by at
	// most this much.
	sweepMaxSleep = time.Minute
)

// SweepResult is what one expiry sweep did.
type SweepResult struct {
	// Date is the sweep's date in apply.timezone: alerts whose active_to is
	// on or before it have lapsed.
	Date rules.Date
	// Due counts the DPS alerts, not deleted, that have lapsed (mapped to
	// NOMIS or not, already INACTIVE there or not).
	Due int
	// Inactivated counts the NOMIS rows the sweep set INACTIVE.
	Inactivated int
}

// sweepMetrics are the expiry sweep's metrics (namespace alertsync,
// subsystem apply_nomis).
type sweepMetrics struct {
	Rows        prometheus.Counter   // NOMIS rows set INACTIVE
	Seconds     prometheus.Histogram // duration of a completed sweep
	LastSuccess prometheus.Gauge     // end of the last completed sweep, Unix seconds
	Failures    prometheus.Counter   // sweeps that failed
}

// newSweepMetrics creates the sweep's metrics; with a nil registerer they
// are created, not registered.
func newSweepMetrics(reg prometheus.Registerer) *sweepMetrics {
	const ns, sub = "alertsync", "apply_nomis"
	m := &sweepMetrics{
		Rows: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sweep_rows_total",
			Help: "NOMIS alerts the expiry sweep set INACTIVE because their DPS active_to had passed."}),
		Seconds: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "sweep_seconds",
			Help: "Duration of a completed expiry sweep.", Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}),
		LastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "sweep_last_success_timestamp_seconds",
			Help: "When the last expiry sweep completed (Unix time); 0 before the first. Alert when older than a day and a bit."}),
		Failures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "sweep_failures_total",
			Help: "Expiry sweeps that failed (retried at the next scheduled time)."}),
	}
	if reg != nil {
		reg.MustRegister(m.Rows, m.Seconds, m.LastSuccess, m.Failures)
	}
	return m
}

// sweeper runs the expiry sweep: it reads lapsed alerts from DPS (a
// read-only pool) and writes NOMIS (the apply's pool).
type sweeper struct {
	nomis dialect
	dps   *pgxpool.Pool
	loc   *time.Location
	at    clock
	batch int
	now   func() time.Time
	log   *slog.Logger
	m     *sweepMetrics
}

// dueAlert is a lapsed DPS alert with the NOMIS key the DPS-side mapping
// holds for it (book and seq nil when it holds none).
type dueAlert struct {
	id       string
	activeTo string // YYYY-MM-DD
	book     *int64
	seq      *int32
}

// run runs one sweep, then counts and logs it. A sweep cut short by ctx is
// not a failure.
func (s *sweeper) run(ctx context.Context) (SweepResult, error) {
	start := time.Now()
	res, err := s.sweep(ctx)
	took := time.Since(start)
	switch {
	case err != nil && ctx.Err() != nil:
		s.log.Info("expiry sweep stopped", "date", res.Date.String(), "due", res.Due, "inactivated", res.Inactivated)
		return res, err
	case err != nil:
		s.m.Failures.Inc()
		s.log.Error("expiry sweep failed; retried at the next scheduled time", "err", err,
			"date", res.Date.String(), "due", res.Due, "inactivated", res.Inactivated)
		return res, err
	}
	s.m.Seconds.Observe(took.Seconds())
	s.m.LastSuccess.SetToCurrentTime()
	s.log.Info("expiry sweep done", "date", res.Date.String(), "due", res.Due, "inactivated", res.Inactivated,
		"took", took.Round(time.Millisecond).String())
	return res, nil
}

// sweep sets INACTIVE the NOMIS rows of DPS alerts that have lapsed by
// today (in s.loc), batch by batch: one read of at most s.batch lapsed
// alerts from DPS (keyset order of id), then one NOMIS transaction for
// them. Rows already INACTIVE are left alone, so a second sweep changes
// nothing.
func (s *sweeper) sweep(ctx context.Context) (SweepResult, error) {
	res := SweepResult{Date: rules.DateIn(s.now(), s.loc)}
	after := "00000000-0000-0000-0000-000000000000"
	for {
		page, err := s.due(ctx, res.Date, after)
		if err != nil {
			return res, err
		}
		if len(page) == 0 {
			return res, nil
		}
		res.Due += len(page)
		n, err := s.inactivateRetrying(ctx, res.Date, page)
		if err != nil {
			return res, err
		}
		res.Inactivated += n
		s.m.Rows.Add(float64(n))
		if len(page) < s.batch {
			return res, nil
		}
		after = page[len(page)-1].id
	}
}

// due reads the next batch of DPS alerts, not deleted, whose active_to is
// on or before date (an alert is active while active_to IS NULL OR
// active_to > today), after id after, with their DPS-side mapping.
func (s *sweeper) due(ctx context.Context, date rules.Date, after string) ([]dueAlert, error) {
	rows, err := s.dps.Query(ctx, `SELECT a.id::text, a.active_to::text, m.nomis_booking_id, m.nomis_alert_seq
		  FROM alert a
		  LEFT JOIN alertsync.alert_mapping m
		    ON m.dps_alert_id = a.id AND NOT m.deleted AND m.nomis_booking_id IS NOT NULL
		 WHERE a.deleted_at IS NULL AND a.active_to <= $1::date AND a.id > $2::uuid
		 ORDER BY a.id
		 LIMIT $3`, date.String(), after, s.batch)
	if err != nil {
		return nil, fmt.Errorf("reading lapsed alerts from DPS: %w", err)
	}
	defer rows.Close()
	var out []dueAlert
	for rows.Next() {
		var d dueAlert
		if err := rows.Scan(&d.id, &d.activeTo, &d.book, &d.seq); err != nil {
			return nil, fmt.Errorf("reading lapsed alerts from DPS: %w", err)
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading lapsed alerts from DPS: %w", err)
	}
	return out, nil
}

// inactivateRetrying is inactivate, retried after a transient error.
func (s *sweeper) inactivateRetrying(ctx context.Context, date rules.Date, page []dueAlert) (int, error) {
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		n, err := s.nomis.inactivate(ctx, date, page)
		if err == nil || attempt >= sweepRetries || !s.nomis.transient(err) || ctx.Err() != nil {
			return n, err
		}
		s.log.Warn("expiry sweep transaction failed; retrying", "err", err, "attempt", attempt)
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// schedule runs a sweep every day when the clock in s.loc shows s.at,
// until ctx ends. A failed sweep is logged and counted (run); the next one
// runs at the next scheduled time.
func (s *sweeper) schedule(ctx context.Context) {
	for {
		next := nextSweep(s.now(), s.at, s.loc)
		s.log.Info("next expiry sweep", "at", next.In(s.loc).Format(time.RFC3339))
		if !s.sleepUntil(ctx, next) {
			return
		}
		_, _ = s.run(ctx)
		if ctx.Err() != nil {
			return
		}
	}
}

// sleepUntil waits until s.now() reaches t (true) or ctx ends (false),
// looking at the clock again at least every sweepMaxSleep.
func (s *sweeper) sleepUntil(ctx context.Context, t time.Time) bool {
	for {
		d := t.Sub(s.now())
		if d <= 0 {
			return true
		}
		timer := time.NewTimer(min(d, sweepMaxSleep))
		select {
		case <-ctx.Done():
			timer.Stop()
			return false
		case <-timer.C:
		}
	}
}

// clock is a time of day, to the minute.
type clock struct{ hour, minute int }

// errClock is the error of a time of day that is not HH:MM.
var errClock = errors.New("want a 24-hour time of day HH:MM, e.g. 02:00")

// parseClock parses HH:MM (24-hour, two digits each).
func parseClock(s string) (clock, error) {
	if len(s) != 5 || s[2] != ':' {
		return clock{}, fmt.Errorf("%w, got %q", errClock, s)
	}
	digit := func(i int) (int, bool) { return int(s[i] - '0'), s[i] >= '0' && s[i] <= '9' }
	h1, ok1 := digit(0)
	h2, ok2 := digit(1)
	m1, ok3 := digit(3)
	m2, ok4 := digit(4)
	c := clock{hour: 10*h1 + h2, minute: 10*m1 + m2}
	if !ok1 || !ok2 || !ok3 || !ok4 || c.hour > 23 || c.minute > 59 {
		return clock{}, fmt.Errorf("%w, got %q", errClock, s)
	}
	return c, nil
}

// nextSweep returns the first instant after now at which the clock in loc
// shows at (see wallClock for the days of daylight-saving changes).
func nextSweep(now time.Time, at clock, loc *time.Location) time.Time {
	y, m, d := now.In(loc).Date()
	for day := d; ; day++ { // ends on the first or second day: wallClock grows by about a day each time
		if t := wallClock(y, m, day, at, loc); t.After(now) {
			return t
		}
	}
}

// wallClock returns the instant at which the clock in loc shows at on day
// y-m-d (normalised as time.Date does). When a daylight-saving change
// repeats that time (autumn) it is the first of the two; when the change
// skips it (spring) it is the moment the clock jumps. Unlike time.Date,
// whose choice in both cases is unspecified.
func wallClock(y int, m time.Month, d int, at clock, loc *time.Location) time.Time {
	wall := time.Date(y, m, d, at.hour, at.minute, 0, 0, time.UTC)
	// The offsets in force a day and a half before and after: no zone
	// changes twice within three days.
	_, before := wall.Add(-36 * time.Hour).In(loc).Zone()
	_, after := wall.Add(36 * time.Hour).In(loc).Zone()
	var first time.Time
	for _, off := range []int{before, after} {
		t := wall.Add(-time.Duration(off) * time.Second)
		if sameWall(t.In(loc), wall) && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if !first.IsZero() {
		return first
	}
	// Skipped: at the old offset the time falls after the change; the zone
	// in force then starts when the clock jumps.
	t := wall.Add(-time.Duration(before) * time.Second).In(loc)
	if start, _ := t.ZoneBounds(); !start.IsZero() {
		return start
	}
	return t
}

// sameWall reports whether t (in its location) shows the date, hour and
// minute of wall.
func sameWall(t, wall time.Time) bool {
	ty, tm, td := t.Date()
	wy, wm, wd := wall.Date()
	return ty == wy && tm == wm && td == wd && t.Hour() == wall.Hour() && t.Minute() == wall.Minute()
}
