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
	evs, err := Read(ctx, cfg, deps, q.Window.Since, errOut)
	if err != nil {
		return err
	}
	s := Select(evs, q.Selector, q.Window)
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

// Read reads the event topics (from the first record written at or after
// since when it is set) up to the end offsets they have when it starts, and
// returns their events, unsorted and unselected. The reference topics are
// read whole first. It is bounded by history.timeout.
func Read(ctx context.Context, cfg Config, deps Deps, since time.Time, errOut io.Writer) ([]Event, error) {
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
		codec: schemas.New(deps.Registry, schemas.WithLogger(log), schemas.WithTopicPrefix(cfg.Topics.Prefix)),
		conv:  &converter{loc: loc, refs: newRefData()},
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
	if err := read(ctx, newClient, refs, func(rec *kgo.Record) error { return r.addRef(ctx, rec) }); err != nil {
		return nil, r.kafkaErr(ctx, err)
	}
	todo, missing, err := plan(ctx, adm, names(EventTopics()), since)
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
	if err := read(ctx, newClient, todo, func(rec *kgo.Record) error { return r.add(ctx, rec) }); err != nil {
		return nil, r.kafkaErr(ctx, err)
	}
	return r.events, nil
}

// reader turns the records read into events.
type reader struct {
	cfg    Config
	codec  *schemas.Codec
	conv   *converter
	events []Event
}

// kafkaErr names what to check for an error reading Kafka.
func (r *reader) kafkaErr(ctx context.Context, err error) error {
	var re *registryError
	switch {
	case errors.As(err, &re):
		return err
	case ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("reading the topics at kafka.brokers %s did not end within history.timeout (%s): %w",
			strings.Join(r.cfg.Kafka.Brokers, ","), r.cfg.Own.Timeout, err)
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
		return v, "", nil
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
	v, _, err := r.decode(ctx, rec.Value, schemas.Location{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Part: schemas.PartValue})
	if err != nil {
		return err
	}
	// An undecodable reference record only leaves a code unnamed.
	r.conv.refs.add(r.base(rec.Topic), v)
	return nil
}

func (r *reader) add(ctx context.Context, rec *kgo.Record) error {
	base := r.base(rec.Topic)
	at := RecordRef{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset, Timestamp: Time{rec.Timestamp.UTC()}}
	loc := schemas.Location{Topic: rec.Topic, Partition: rec.Partition, Offset: rec.Offset}
	if rec.Value == nil {
		return nil // a tombstone
	}
	loc.Part = schemas.PartKey
	key, keyWhy, err := r.decode(ctx, rec.Key, loc)
	if err != nil {
		return err
	}
	loc.Part = schemas.PartValue
	value, why, err := r.decode(ctx, rec.Value, loc)
	if err != nil {
		return err
	}
	if why != "" {
		r.events = append(r.events, undecodable(base, at, why, key))
		return nil
	}
	headers := map[string]string{}
	for _, h := range rec.Headers {
		headers[h.Key] = string(h.Value)
	}
	ev, err := r.conv.event(base, at, headers, key, value)
	switch {
	case errors.Is(err, errTombstone):
		return nil
	case err != nil:
		// The converters' errors name fields, never values.
		why := "shape: " + err.Error()
		if keyWhy != "" {
			why = keyWhy
		}
		r.events = append(r.events, undecodable(base, at, why, key))
		return nil
	}
	if ev.Kind == KindDLQ {
		r.original(ctx, &ev, value)
	}
	r.events = append(r.events, ev)
	return nil
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
		// A registry error here is not fatal: the entry still shows, by its
		// alert key.
		kv[i], _, _ = r.decode(ctx, b, loc)
	}
	ev.ident.merge(identOf(r.base(topic), kv[0], kv[1]))
	if ev.PrisonNumber == "" {
		ev.PrisonNumber = ev.ident.prison
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
