package history

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/config"
	"github.com/alertsync/alertsync/internal/kafka"
	"github.com/alertsync/alertsync/schemas"
)

// ErrNoEvents is returned (wrapped) by Run when no event concerns the
// selector.
var ErrNoEvents = errors.New("no events found")

// ErrNoTopics is returned (wrapped) by Run when none of the topics it reads
// exists.
var ErrNoTopics = errors.New("none of the topics exists")

// EventTopics are the topics whose records are events, by base name.
func EventTopics() []kafka.Topic {
	return []kafka.Topic{
		kafka.NOMISOffenderAlerts, kafka.NOMISPrisonerAlerts, kafka.DPSAlert,
		kafka.CommandsDPS, kafka.CommandsNOMIS, kafka.Outcomes, kafka.DLQ,
	}
}

// refTopics are the reference topics read whole to name the codes of DPS
// alerts.
func refTopics() []kafka.Topic { return []kafka.Topic{kafka.DPSAlertCode, kafka.DPSAlertType} }

// Deps are what Run works with, made by the caller.
type Deps struct {
	// Registry is the schema registry the records were written with.
	Registry schemas.Registry
	// Logger receives warnings; nil discards them.
	Logger *slog.Logger
}

// Query is what to show.
type Query struct {
	Selector Selector
	Window   Window
	JSON     bool
}

// Run reads the topics, selects the events of q and writes them to out, as
// text or JSON; notes (topics that do not exist) go to errOut. It returns
// an error wrapping ErrNoEvents when no event concerns the selector (out
// then gets nothing, or an empty JSON array).
func Run(ctx context.Context, cfg Config, deps Deps, q Query, out, errOut io.Writer) error {
	tl, err := Read(ctx, cfg, deps, q.Selector, q.Window.Since, errOut)
	if err != nil {
		return err
	}
	s := tl.Select(q.Selector, q.Window)
	if s.Matched == 0 {
		if q.JSON {
			if err := WriteJSON(out, nil); err != nil {
				return err
			}
		}
		var also string
		if s.Unattributed > 0 {
			also = fmt.Sprintf(" (and %s naming nobody)", plural(s.Unattributed, "undecodable record"))
		}
		return fmt.Errorf("%w for %s in %s%s", ErrNoEvents, q.Selector, windowText(q.Window), also)
	}
	if q.JSON {
		return WriteJSON(out, s.Events)
	}
	return WriteText(out, q.Selector, s)
}

func windowText(w Window) string {
	switch {
	case w.Since.IsZero() && w.Until.IsZero():
		return "the topics"
	case w.Until.IsZero():
		return "the topics since " + w.Since.UTC().Format(timeFormat)
	case w.Since.IsZero():
		return "the topics until " + w.Until.UTC().Format(timeFormat)
	}
	return "the topics from " + w.Since.UTC().Format(timeFormat) + " to " + w.Until.UTC().Format(timeFormat)
}

// Timeline is what Read keeps of the records it read.
type Timeline struct {
	// Events are the events that may concern the selector Read was given,
	// unsorted: a superset of what Select picks.
	Events []Event
	// Records counts the records read (tombstones aside) by the pass that
	// kept Events, the last; every pass reads the same offsets.
	Records int
	// links joins the alert keys named by every record read.
	links unionFind
}

// Select returns the events of the timeline that concern sel within w,
// with alerts joined by every record read (see Select).
func (tl *Timeline) Select(sel Selector, w Window) Selection {
	return selectEvents(tl.Events, tl.links, sel, w)
}

// Read reads the event topics up to the end offsets they have when it
// starts and returns the events that may concern sel, unsorted and
// unselected, with the links between alert keys of every record read. With
// since set it starts at the first record written history.since_lookback
// before since. The reference topics are read whole first. It is bounded
// by history.timeout.
//
// Memory is bounded by what may be selected, not by the topics: every
// record is decoded, but an Event is kept only when it can concern sel.
// For a prisoner, in one pass: the events naming the prisoner, and those
// naming no prisoner (an alert or booking of theirs is known only once
// everything is read). For an alert, in two passes over the same offsets:
// the first joins the keys of every alert and notes the alerts each
// command names; the second keeps the events of the alert and those of its
// commands. What is held besides is the union-find of the alert keys known
// in both systems and, during the first pass of an alert, the keys of each
// command.
func Read(ctx context.Context, cfg Config, deps Deps, sel Selector, since time.Time, errOut io.Writer) (*Timeline, error) {
	log := deps.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	loc, err := time.LoadLocation(cfg.Own.Timezone)
	if err != nil {
		return nil, &config.KeyError{Key: "history.timezone", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Own.Timeout)
	defer cancel()
	id := cfg.Kafka.ClientID + "-history"
	cl, err := kafka.NewClient(cfg.Kafka, log, nil, kgo.ClientID(id))
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	newClient := func(opts ...kgo.Opt) (*kgo.Client, error) {
		return kafka.NewClient(cfg.Kafka, log, nil, append([]kgo.Opt{kgo.ClientID(id + "-reader")}, opts...)...)
	}
	adm := kadm.NewClient(cl)
	r := &reader{
		cfg:   cfg,
		log:   log,
		codec: schemas.New(deps.Registry, schemas.WithLogger(log), schemas.WithTopicPrefix(cfg.Topics.Prefix)),
		conv:  &converter{loc: loc, refs: newRefData()},
		sel:   sel,
		links: unionFind{},
	}

	names := func(ts []kafka.Topic) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = cfg.Topics.Name(t)
		}
		return out
	}
	refs, _, err := plan(ctx, adm, names(refTopics()), time.Time{})
	if err != nil {
		return nil, r.kafkaErr(ctx, err)
	}
	if err := read(ctx, adm, newClient, refs, func(rec *kgo.Record) error { return r.addRef(ctx, rec) }); err != nil {
		return nil, r.kafkaErr(ctx, err)
	}
	start := since
	if !since.IsZero() {
		start = since.Add(-cfg.Own.SinceLookback)
	}
	toRead, missing, err := plan(ctx, adm, names(EventTopics()), start)
	if err != nil {
		return nil, r.kafkaErr(ctx, err)
	}
	if len(missing) == len(EventTopics()) {
		return nil, fmt.Errorf("%w under topics.prefix %q at kafka.brokers %s: %s (check topics.prefix; the pipeline creates them at start)",
			ErrNoTopics, cfg.Topics.Prefix, strings.Join(cfg.Kafka.Brokers, ","), strings.Join(missing, ", "))
	}
	for _, t := range missing {
		if _, err := fmt.Fprintf(errOut, "note: topic %s does not exist: its events are not shown\n", t); err != nil {
			return nil, fmt.Errorf("writing a note: %w", err)
		}
	}
	passes := []pass{passPrisoner}
	if sel.key() != "" {
		passes = []pass{passLinks, passAlert}
	}
	for _, p := range passes {
		r.begin(p)
		if err := read(ctx, adm, newClient, toRead, func(rec *kgo.Record) error { return r.add(ctx, rec) }); err != nil {
			return nil, r.kafkaErr(ctx, err)
		}
		if err := r.registryKnowsNothing(); err != nil {
			return nil, err
		}
	}
	return &Timeline{Events: r.events, Records: r.records, links: r.links}, nil
}

// pass is what a reading of the event topics is for.
type pass int

const (
	// passPrisoner, the only pass for a prisoner, joins the alert keys and
	// keeps the events that name the prisoner or nobody.
	passPrisoner pass = iota
	// passLinks, the first of an alert, joins the alert keys and notes the
	// alerts each command names; it keeps no event.
	passLinks
	// passAlert, the second of an alert, keeps the events that name the
	// alert or report on a command that does.
	passAlert
)

// reader turns the records read into events, and keeps those that may be
// selected.
type reader struct {
	cfg   Config
	log   *slog.Logger
	codec *schemas.Codec
	conv  *converter
	sel   Selector
	pass  pass

	// links joins the alert keys of every record read.
	links unionFind
	// cmdKeys holds, during passLinks, a key of each alert each command
	// names, by command id.
	cmdKeys map[string][]alertKey
	// roots and cmds are, in passAlert, the root of the selected alert and
	// the ids of the commands that name it.
	roots map[alertKey]bool
	cmds  map[string]bool

	events  []Event
	records int
	// decoded counts the keys and values decoded, unknownIDs those that
	// could not be for a schema id the registry does not know.
	decoded, unknownIDs int
}

// begin starts pass p.
func (r *reader) begin(p pass) {
	r.pass, r.records, r.events = p, 0, nil
	switch p {
	case passLinks:
		r.cmdKeys = map[string][]alertKey{}
	case passAlert:
		root := r.links.find(r.sel.key())
		r.roots = map[alertKey]bool{root: true}
		r.cmds = map[string]bool{}
		for id, ks := range r.cmdKeys {
			if slices.ContainsFunc(ks, func(k alertKey) bool { return r.links.find(k) == root }) {
				r.cmds[id] = true
			}
		}
		r.cmdKeys = nil
	}
}

// add reads one record of an event topic.
func (r *reader) add(ctx context.Context, rec *kgo.Record) error {
	ev, ok, err := r.event(ctx, rec)
	if err != nil || !ok {
		return err
	}
	r.records++
	if r.pass != passAlert {
		r.link(&ev)
	}
	if r.wants(&ev) {
		r.events = append(r.events, ev)
	}
	return nil
}

// link joins the alert keys ev names and, in passLinks, notes the alerts
// of a command.
func (r *reader) link(ev *Event) {
	r.links.join(ev.ident)
	if r.cmdKeys == nil || (ev.Kind != KindCommandDPS && ev.Kind != KindCommandNOMIS) || ev.CommandID == "" {
		return
	}
	for _, g := range ev.ident.alerts {
		// One key per alert: the others are joined with it.
		r.cmdKeys[ev.CommandID] = append(r.cmdKeys[ev.CommandID], g[0])
	}
}

// wants reports whether ev may be selected: whether to keep it.
func (r *reader) wants(ev *Event) bool {
	id := &ev.ident
	switch r.pass {
	case passPrisoner:
		return len(id.prisons) == 0 || slices.Contains(id.prisons, r.sel.PrisonNumber)
	case passAlert:
		return ev.Unattributed || namesRoot(r.links, *id, r.roots) ||
			(id.commandID != "" && r.cmds[id.commandID])
	}
	return false
}

// registryKnowsNothing returns an error when no key or value could be
// decoded so far and some could not for a schema id the registry does not
// know: registry.url is then most likely not the registry the pipeline
// writes with, and every record would show as undecodable.
func (r *reader) registryKnowsNothing() error {
	if r.decoded > 0 || r.unknownIDs == 0 {
		return nil
	}
	return fmt.Errorf("the schema registry at %s (registry.url) knows none of the schema ids of the records read (%d keys and values name one it does not know, none could be decoded): %w; is it the registry the pipeline writes with?",
		config.RedactDSN(r.cfg.Registry.URL), r.unknownIDs, schemas.ErrUnknownSchemaID)
}

// kafkaErr names what to check for an error reading Kafka.
func (r *reader) kafkaErr(ctx context.Context, err error) error {
	var re *registryError
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		// Whatever failed last (a fetch, a schema fetch) failed for the
		// deadline. A registry that knew no schema so far is the likelier
		// cause (each record asked it in vain).
		err = fmt.Errorf("reading the topics at kafka.brokers %s did not end within history.timeout (%s): %w",
			strings.Join(r.cfg.Kafka.Brokers, ","), r.cfg.Own.Timeout, err)
		if rerr := r.registryKnowsNothing(); rerr != nil {
			return fmt.Errorf("%w; and %w", rerr, err)
		}
		return err
	case ctx.Err() != nil:
		return fmt.Errorf("reading the topics: %w", ctx.Err())
	case errors.As(err, &re):
		return err
	}
	return fmt.Errorf("reading the topics at kafka.brokers %s: %w (are the brokers up and reachable from here?)",
		strings.Join(r.cfg.Kafka.Brokers, ","), err)
}

// registryError is a schema that could not be fetched from the registry.
type registryError struct {
	url string
	err error
}

func (e *registryError) Error() string {
	return fmt.Sprintf("fetching a schema from the schema registry at %s (registry.url): %v (is the registry up and reachable from here?)",
		config.RedactDSN(e.url), e.err)
}

func (e *registryError) Unwrap() error { return e.err }

// decode decodes data (a key or value read at loc), telling an undecodable
// payload (ok false, why says which kind) from a registry that cannot be
// reached (an error).
func (r *reader) decode(ctx context.Context, data []byte, loc schemas.Location) (v any, why string, err error) {
	v, err = r.codec.Decode(ctx, data, loc)
	if err == nil {
		r.decoded++
		return v, "", nil
	}
	if errors.Is(err, schemas.ErrUnknownSchemaID) {
		r.unknownIDs++
	}
	var de *schemas.DecodeError
	if errors.As(err, &de) && de.Permanent() {
		return nil, undecodableWhy(de), nil
	}
	return nil, "", &registryError{url: r.cfg.Registry.URL, err: err}
}

// undecodableWhy names the kind of a permanent decode error, never its
// text (the Avro library's message could quote the bytes it met).
func undecodableWhy(de *schemas.DecodeError) string {
	part := de.Location.Part.String()
	for _, s := range []error{schemas.ErrTruncated, schemas.ErrUnknownMagic, schemas.ErrUnknownSchemaID, schemas.ErrUnsupportedSchema, schemas.ErrMalformed} {
		if errors.Is(de.Err, s) {
			if de.SchemaID != 0 {
				return fmt.Sprintf("%s: %v (schema id %d)", part, s, de.SchemaID)
			}
			return fmt.Sprintf("%s: %v", part, s)
		}
	}
	return part + ": cannot be decoded"
}

// base returns the name of topic without topics.prefix.
func (r *reader) base(topic string) string { return strings.TrimPrefix(topic, r.cfg.Topics.Prefix) }

func (r *reader) addRef(ctx context.Context, rec *kgo.Record) error {
	if rec.Value == nil {
		return nil // a tombstone
	}
	v, why, err := r.decode(ctx, rec.Value, schemas.Location{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Part: schemas.PartValue})
	if err != nil {
		return err
	}
	if why != "" {
		// It only leaves a code unnamed. Its place, never its bytes.
		r.log.Warn("skipping a reference record that cannot be decoded: DPS alert codes it names show as alert_code_id=N",
			"topic", rec.Topic, "partition", rec.Partition, "offset", rec.Offset)
		return nil
	}
	r.conv.refs.add(r.base(rec.Topic), v)
	return nil
}

// event returns the event of a record of an event topic (ok false for a
// tombstone): an undecodable one when the record cannot be read.
func (r *reader) event(ctx context.Context, rec *kgo.Record) (ev Event, ok bool, err error) {
	base := r.base(rec.Topic)
	at := RecordRef{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: Time{rec.Timestamp.UTC()}}
	loc := schemas.Location{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	if rec.Value == nil {
		return Event{}, false, nil // a tombstone
	}
	loc.Part = schemas.PartKey
	key, keyWhy, err := r.decode(ctx, rec.Key, loc)
	if err != nil {
		return Event{}, false, err
	}
	loc.Part = schemas.PartValue
	value, why, err := r.decode(ctx, rec.Value, loc)
	if err != nil {
		return Event{}, false, err
	}
	if why != "" {
		return undecodable(base, at, why, key), true, nil
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	ev, err = r.conv.event(base, at, headers, key, value)
	switch {
	case errors.Is(err, errTombstone):
		return Event{}, false, nil
	case err != nil:
		// The converters' errors name fields, never values.
		why := "shape: " + err.Error()
		if keyWhy != "" {
			why = keyWhy
		}
		return undecodable(base, at, why, key), true, nil
	}
	if ev.Kind == KindDLQ {
		r.original(ctx, &ev, value)
	}
	return ev, true, nil
}

// original adds to a DLQ entry's event what its original record names, when
// the original can be decoded (it is the record as consumed, in the wire
// format, for the entries of the transformer and the applies).
func (r *reader) original(ctx context.Context, ev *Event, entry any) {
	m := asRecord(entry)
	topic, _ := schemas.Get[string](m, "topic")
	partition, _ := schemas.Get[int32](m, "partition")
	offset, _ := schemas.Get[int64](m, "offset")
	loc := schemas.Location{Topic: topic, Partition: partition, Offset: offset}
	var kv [2]any
	for i, part := range []struct {
		name string
		p    schemas.Part
	}{{"key", schemas.PartKey}, {"value", schemas.PartValue}} {
		b, ok := schemas.GetOpt[[]byte](m, part.name)
		if !ok {
			continue
		}
		loc.Part = part.p
		// Neither an undecodable original nor a registry error is fatal:
		// the entry still shows, by its alert key.
		var why string
		var err error
		kv[i], why, err = r.decode(ctx, b, loc)
		if (why != "" || err != nil) && r.pass != passLinks {
			// Where, never what: the bytes and the decoder's message may
			// quote personal text.
			r.log.Warn("a DLQ entry's original record cannot be decoded: the entry is shown by its alert key",
				"entry", ev.Record.String(), "original", ev.Original, "part", part.name, "registry_error", err != nil)
		}
	}
	ev.ident.merge(identOf(r.base(topic), kv[0], kv[1]))
	if ev.PrisonNumber == "" {
		ev.PrisonNumber = ev.ident.prison()
	}
	if ev.CommandID == "" {
		ev.CommandID = ev.ident.commandID
	}
	// The ids of the alert: the keys of the original's alert that holds the
	// entry's alert key, or of its only alert.
	own, _ := parseAlertKey(ev.AlertKey)
	for _, g := range ev.ident.alerts {
		if (own == "" && len(ev.ident.alerts) == 1) || slices.Contains(g, own) {
			for _, k := range g {
				ev.fillKey(k)
			}
		}
	}
}
