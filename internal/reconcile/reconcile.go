package reconcile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/alertsync/alertsync/internal/db"
	"github.com/alertsync/alertsync/transform/rules"
)

// ErrDifferences is returned (wrapped, with the count) by the CLI when a
// run found differences: the process exits 1.
var ErrDifferences = errors.New("NOMIS and DPS differ")

// RunOptions are the choices of one run.
type RunOptions struct {
	// PrisonNumber limits the run to one prisoner; "" compares everyone.
	PrisonNumber string
	// ShowValues puts the differing values (personal data) into the
	// report; by default it only names the fields.
	ShowValues bool
}

// Result is what one run found.
type Result struct {
	Started          time.Time     `json:"started"`
	Duration         time.Duration `json:"duration_ns"`
	PrisonersChecked int           `json:"prisoners_checked"`
	NOMISAlerts      int           `json:"nomis_alerts"`
	DPSAlerts        int           `json:"dps_alerts"`
	// Rechecked counts the prisoners read again after the full pass.
	Rechecked   int          `json:"rechecked"`
	Differences []Difference `json:"differences"`
}

// Counts returns the number of differences by kind.
func (r *Result) Counts() map[Kind]int {
	out := map[Kind]int{}
	for i := range r.Differences {
		out[r.Differences[i].Kind]++
	}
	return out
}

// Deps are the parts a Reconciler runs with, made by the caller.
type Deps struct {
	Logger  *slog.Logger
	Metrics *Metrics // nil: none
}

// Reconciler compares NOMIS with DPS. One run at a time.
type Reconciler struct {
	nomis NOMISReader
	dps   *dpsReader
	dpsDB *sql.DB
	opts  Options
	loc   *time.Location
	log   *slog.Logger
	m     *Metrics
	now   func() time.Time

	// beforeRecheck, when set (tests), runs between the full pass and the
	// re-check with the prisoners about to be re-read.
	beforeRecheck func(ctx context.Context, prisoners []string) error
}

// New returns a Reconciler reading NOMIS through nomis and DPS from dpsDB
// (both owned by the caller), with the validated options opts.
func New(nomis NOMISReader, dpsDB *sql.DB, opts Options, deps Deps) (*Reconciler, error) {
	loc, err := time.LoadLocation(opts.Timezone)
	if err != nil {
		return nil, fmt.Errorf("loading zone %q (reconcile.timezone): %w", opts.Timezone, err)
	}
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{nomis: nomis, dps: &dpsReader{db: dpsDB}, dpsDB: dpsDB, opts: opts, loc: loc, log: log, m: deps.Metrics, now: time.Now}, nil
}

// Open connects to both databases of cfg and returns a Reconciler on them
// and the function that closes the connections.
func Open(ctx context.Context, cfg Config, deps Deps) (*Reconciler, func(), error) {
	dpsDB, err := db.OpenPostgres(ctx, cfg.DPS.DSN, cfg.DPS.Password, cfg.Own.ConnectTimeout)
	if err != nil {
		return nil, nil, fmt.Errorf("opening DPS (dps.dsn): %w", err)
	}
	var nomisDB *sql.DB
	if cfg.NOMIS.Dialect == "oracle" {
		nomisDB, err = db.OpenOracle(ctx, cfg.NOMIS.DSN, cfg.NOMIS.Password, cfg.Own.ConnectTimeout)
	} else {
		nomisDB, err = db.OpenPostgres(ctx, cfg.NOMIS.DSN, cfg.NOMIS.Password, cfg.Own.ConnectTimeout)
	}
	if err != nil {
		_ = dpsDB.Close()
		return nil, nil, fmt.Errorf("opening NOMIS (nomis.dsn, dialect %s): %w", cfg.NOMIS.Dialect, err)
	}
	closeAll := func() { _ = nomisDB.Close(); _ = dpsDB.Close() }
	loc, err := time.LoadLocation(cfg.Own.Timezone)
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("loading zone %q (reconcile.timezone): %w", cfg.Own.Timezone, err)
	}
	var nr NOMISReader
	if cfg.NOMIS.Dialect == "oracle" {
		nr = NewOracleReader(nomisDB, loc)
	} else {
		nr = NewStandinReader(nomisDB, loc)
	}
	r, err := New(nr, dpsDB, cfg.Own, deps)
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	return r, closeAll, nil
}

// Run compares the two sides once (one prisoner when ro.PrisonNumber is
// set), re-checks the prisoners that differ, and returns what still
// differs. It records the run in the metrics.
func (r *Reconciler) Run(ctx context.Context, ro RunOptions) (*Result, error) {
	res, err := r.run(ctx, ro)
	if err != nil {
		r.m.observe(nil)
		return nil, err
	}
	r.m.observe(res)
	c := res.Counts()
	attrs := []any{"prisoners", res.PrisonersChecked, "nomis_alerts", res.NOMISAlerts, "dps_alerts", res.DPSAlerts,
		"rechecked", res.Rechecked, "differences", len(res.Differences), "duration", res.Duration}
	for _, k := range Kinds() {
		if c[k] > 0 {
			attrs = append(attrs, string(k), c[k])
		}
	}
	r.log.Info("reconcile finished", attrs...)
	return res, nil
}

func (r *Reconciler) run(ctx context.Context, ro RunOptions) (*Result, error) {
	res := &Result{Started: r.now()}
	codes, err := loadCodes(ctx, r.dpsDB)
	if err != nil {
		return nil, err
	}
	rl, err := rules.New(codes, r.loc)
	if err != nil {
		return nil, err
	}
	cmp := NewComparer(rl, r.loc, ro.ShowValues, r.now)
	var first []Difference
	if ro.PrisonNumber != "" {
		first, err = r.one(ctx, cmp, ro.PrisonNumber, res)
	} else {
		first, err = r.pass(ctx, cmp, res)
	}
	if err != nil {
		return nil, err
	}
	if len(first) > 0 {
		if res.Differences, err = r.recheck(ctx, cmp, first, res); err != nil {
			return nil, err
		}
	}
	if res.Differences == nil {
		res.Differences = []Difference{}
	}
	res.Duration = r.now().Sub(res.Started)
	return res, nil
}

// one compares the prisoner pn.
func (r *Reconciler) one(ctx context.Context, cmp *Comparer, pn string, res *Result) ([]Difference, error) {
	n, d, err := r.readBoth(ctx, pn)
	if err != nil {
		return nil, err
	}
	res.PrisonersChecked++
	res.NOMISAlerts += len(n.Alerts)
	res.DPSAlerts += liveCount(d.Alerts)
	return cmp.Compare(pn, n.Alerts, d.Alerts), nil
}

// readBoth reads prisoner pn on both sides at once.
func (r *Reconciler) readBoth(ctx context.Context, pn string) (NOMISPrisoner, DPSPrisoner, error) {
	var (
		n NOMISPrisoner
		d DPSPrisoner
	)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { n, err = r.nomis.Prisoner(gctx, pn); return err })
	g.Go(func() (err error) { d, err = r.dps.Prisoner(gctx, pn); return err })
	return n, d, g.Wait()
}

// recheck reads the prisoners of first again, after the recheck delay, and
// returns what still differs.
func (r *Reconciler) recheck(ctx context.Context, cmp *Comparer, first []Difference, res *Result) ([]Difference, error) {
	var prisoners []string
	for i := range first {
		if pn := first[i].PrisonNumber; len(prisoners) == 0 || prisoners[len(prisoners)-1] != pn {
			prisoners = append(prisoners, pn)
		}
	}
	r.log.Info("reconcile re-checking prisoners with differences", "prisoners", len(prisoners), "delay", r.opts.RecheckDelay)
	if r.opts.RecheckDelay > 0 {
		t := time.NewTimer(r.opts.RecheckDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
	if r.beforeRecheck != nil {
		if err := r.beforeRecheck(ctx, prisoners); err != nil {
			return nil, err
		}
	}
	var out []Difference
	for _, pn := range prisoners {
		n, d, err := r.readBoth(ctx, pn)
		if err != nil {
			return nil, fmt.Errorf("re-checking: %w", err)
		}
		res.Rechecked++
		diffs := cmp.Compare(pn, n.Alerts, d.Alerts)
		if len(diffs) > 0 {
			r.log.Debug("reconcile difference confirmed", "prison_number", pn, "differences", len(diffs))
		}
		out = append(out, diffs...)
	}
	return out, nil
}

// pass compares every prisoner, merging the two sides' page streams in
// prison-number order.
func (r *Reconciler) pass(ctx context.Context, cmp *Comparer, res *Result) ([]Difference, error) {
	g, gctx := errgroup.WithContext(ctx)
	nch := make(chan []NOMISPrisoner, 2)
	dch := make(chan []DPSPrisoner, 2)
	limit := r.opts.PageSize
	g.Go(func() error {
		return stream(gctx, nch, limit, r.nomis.Page, func(p *NOMISPrisoner) string { return p.PrisonNumber })
	})
	g.Go(func() error {
		return stream(gctx, dch, limit, r.dps.Page, func(p *DPSPrisoner) string { return p.PrisonNumber })
	})
	var out []Difference
	g.Go(func() error {
		nc := cursor[NOMISPrisoner]{ch: nch}
		dc := cursor[DPSPrisoner]{ch: dch}
		for {
			n, nok, err := nc.peek(gctx)
			if err != nil {
				return err
			}
			d, dok, err := dc.peek(gctx)
			if err != nil {
				return err
			}
			var (
				pn string
				na []NOMISAlert
				da []DPSAlert
			)
			switch {
			case !nok && !dok:
				return nil
			case nok && (!dok || n.PrisonNumber < d.PrisonNumber):
				pn, na = n.PrisonNumber, n.Alerts
				nc.next()
			case dok && (!nok || d.PrisonNumber < n.PrisonNumber):
				pn, da = d.PrisonNumber, d.Alerts
				dc.next()
			default:
				pn, na, da = n.PrisonNumber, n.Alerts, d.Alerts
				nc.next()
				dc.next()
			}
			res.PrisonersChecked++
			res.NOMISAlerts += len(na)
			res.DPSAlerts += liveCount(da)
			out = append(out, cmp.Compare(pn, na, da)...)
		}
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return out, nil
}

func liveCount(d []DPSAlert) int {
	n := 0
	for i := range d {
		if d[i].Row.DeletedAt == nil {
			n++
		}
	}
	return n
}

// stream reads pages with fetch in keyset order and sends them to ch,
// closing it after the last page.
func stream[T any](ctx context.Context, ch chan<- []T, limit int, fetch func(context.Context, string, int) ([]T, error), key func(*T) string) error {
	defer close(ch)
	after := ""
	for {
		page, err := fetch(ctx, after, limit)
		if err != nil {
			return err
		}
		if len(page) > 0 {
			if k := key(&page[0]); after != "" && k <= after {
				return orderError("a page", after, k)
			}
			select {
			case ch <- page:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(page) < limit {
			return nil
		}
		after = key(&page[len(page)-1])
	}
}

// cursor walks the prisoners of a page stream.
type cursor[T any] struct {
	ch   <-chan []T
	page []T
	i    int
	done bool
}

// peek returns the current prisoner, false at the end.
func (c *cursor[T]) peek(ctx context.Context) (*T, bool, error) {
	for !c.done && c.i >= len(c.page) {
		select {
		case p, ok := <-c.ch:
			if !ok {
				c.done = true
				break
			}
			c.page, c.i = p, 0
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}
	if c.done {
		return nil, false, nil
	}
	return &c.page[c.i], true, nil
}

func (c *cursor[T]) next() { c.i++ }
