// Package config loads the typed configuration of every alertsync component.
//
// A component's Config is a plain struct whose fields carry tags:
//
//	Brokers []string `key:"brokers" default:"localhost:9092" doc:"Kafka bootstrap brokers."`
//
// Nested structs compose keys with dots (kafka.brokers); a struct field with
// an empty key tag (`key:""`) is inlined, its keys staying at the parent's level. Values are taken, each
// overriding the one before, from the `default` tag, the YAML file named by
// --config, the environment (ALERTSYNC_ followed by the key in upper case with
// dots as underscores: ALERTSYNC_KAFKA_BROKERS) and command-line flags
// (--kafka.brokers). Fields of type Secret are never read from a flag or from
// the YAML file itself: they come from the environment variable, from the file
// named by the variable with a _FILE suffix, or from the file named by the
// YAML key with a _file suffix (dps.password_file).
//
// Optional tags: `enum:"a,b"` limits a string to a set of values and
// `required:"true"` refuses an empty value. Validate runs those checks and then
// the Validate method of every section that has one; every error names its key.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// EnvPrefix starts every environment variable alertsync reads.
const EnvPrefix = "ALERTSYNC_"

// FileSuffix is appended to a secret's variable (or YAML key, in lower case)
// to name a file holding the secret.
const FileSuffix = "_FILE"

// Field describes one configuration key.
type Field struct {
	Key      string // dotted YAML path, e.g. kafka.brokers
	Env      string // environment variable, e.g. ALERTSYNC_KAFKA_BROKERS
	Default  string // default as written in the tag
	Doc      string
	Type     string // human type name: string, list, int, bool, duration, secret, ...
	Enum     []string
	Required bool
	Secret   bool

	index []int
}

// Flag is the command-line flag of the key, or "" for secrets, which have none.
func (f Field) Flag() string {
	if f.Secret {
		return ""
	}
	return "--" + f.Key
}

// EnvName derives the environment variable of a dotted key.
func EnvName(key string) string {
	return EnvPrefix + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

var (
	secretType   = reflect.TypeFor[Secret]()
	durationType = reflect.TypeFor[time.Duration]()
)

// Fields lists the keys of cfg, a pointer to (or value of) a config struct, in
// declaration order.
func Fields(cfg any) []Field {
	t := reflect.TypeOf(cfg)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var out []Field
	collect(t, "", nil, &out)
	return out
}

func collect(t reflect.Type, prefix string, index []int, out *[]Field) {
	for i := range t.NumField() {
		sf := t.Field(i)
		key, ok := sf.Tag.Lookup("key")
		if !ok || !sf.IsExported() {
			continue
		}
		full := key
		if prefix != "" && key != "" {
			full = prefix + "." + key
		} else if key == "" {
			full = prefix // an inlined section: its keys stay at this level
		}
		idx := append(append([]int(nil), index...), i)
		if sf.Type.Kind() == reflect.Struct && sf.Type != secretType {
			collect(sf.Type, full, idx, out)
			continue
		}
		f := Field{
			Key:      full,
			Env:      EnvName(full),
			Default:  sf.Tag.Get("default"),
			Doc:      sf.Tag.Get("doc"),
			Type:     typeName(sf.Type),
			Required: sf.Tag.Get("required") == "true",
			Secret:   sf.Type == secretType,
			index:    idx,
		}
		if e := sf.Tag.Get("enum"); e != "" {
			f.Enum = strings.Split(e, ",")
		}
		*out = append(*out, f)
	}
}

func typeName(t reflect.Type) string {
	switch {
	case t == secretType:
		return "secret"
	case t == durationType:
		return "duration"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "list"
	default:
		return t.Kind().String()
	}
}

// Sources says where Load reads from. Zero values mean "none".
type Sources struct {
	// File is the YAML file (from --config); empty for none.
	File string
	// FileContent, when not nil, is File's content as the caller already
	// read it (File then only names it in errors): a reload can load
	// exactly the bytes it checked.
	FileContent []byte
	// LookupEnv reads the environment; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// Flags holds the raw flag values set on the command line, by key, as
	// returned by FlagSet.Set calls captured by RegisterFlags.
	Flags map[string]string
}

// Load fills cfg (a pointer to a config struct) from defaults, the YAML file,
// the environment and flags, in that order. It does not validate: call Validate.
func Load(cfg any, src Sources) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("config.Load: want a pointer to a struct, got %T", cfg)
	}
	lookup := src.LookupEnv
	if lookup == nil {
		lookup = os.LookupEnv
	}
	fields := Fields(cfg)
	var errs []error
	set := func(f Field, raw, from string) {
		if err := setValue(v.Elem().FieldByIndex(f.index), raw); err != nil {
			errs = append(errs, &KeyError{Key: f.Key, From: from, Err: err})
		}
	}
	for _, f := range fields {
		if f.Default != "" {
			set(f, f.Default, "default")
		}
	}
	if src.File != "" {
		b := src.FileContent
		if b == nil {
			var err error
			if b, err = os.ReadFile(src.File); err != nil {
				return fmt.Errorf("reading config file: %w", err)
			}
		}
		values, err := readYAML(src.File, b, fields)
		if err != nil {
			return err
		}
		for _, f := range fields {
			if f.Secret {
				if path, ok := values[f.Key+strings.ToLower(FileSuffix)]; ok {
					secretFromFile(f, path, src.File, set, &errs)
				}
				continue
			}
			if raw, ok := values[f.Key]; ok {
				set(f, raw, src.File)
			}
		}
	}
	for _, f := range fields {
		if raw, ok := lookup(f.Env); ok {
			set(f, raw, f.Env)
			continue
		}
		if f.Secret {
			if path, ok := lookup(f.Env + FileSuffix); ok {
				secretFromFile(f, path, f.Env+FileSuffix, set, &errs)
			}
		}
	}
	for _, f := range fields {
		if raw, ok := src.Flags[f.Key]; ok && !f.Secret {
			set(f, raw, "--"+f.Key)
		}
	}
	return errors.Join(errs...)
}

func secretFromFile(f Field, path, from string, set func(Field, string, string), errs *[]error) {
	b, err := os.ReadFile(path)
	if err != nil {
		// The path is not secret; the content is never read into the error.
		*errs = append(*errs, &KeyError{Key: f.Key, From: from, Err: fmt.Errorf("reading secret file: %w", err)})
		return
	}
	set(f, strings.TrimRight(string(b), "\r\n"), from)
}

// readYAML flattens the YAML file path, whose content is b, into dotted
// keys, refusing unknown keys and secrets written inline.
func readYAML(path string, b []byte, fields []Field) (map[string]string, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("parsing config file %s: %w", path, err)
	}
	known := map[string]Field{}
	for _, f := range fields {
		known[f.Key] = f
		if f.Secret {
			known[f.Key+strings.ToLower(FileSuffix)] = Field{Key: f.Key + strings.ToLower(FileSuffix)}
		}
	}
	out := map[string]string{}
	if len(root.Content) == 0 {
		return out, nil
	}
	var errs []error
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		if n.Kind != yaml.MappingNode {
			errs = append(errs, fmt.Errorf("%s line %d: %s: want a mapping", path, n.Line, orRoot(prefix)))
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			key := k.Value
			if prefix != "" {
				key = prefix + "." + k.Value
			}
			f, ok := known[key]
			switch {
			case ok && f.Secret:
				errs = append(errs, &KeyError{Key: key, From: path, Err: fmt.Errorf(
					"secrets are not read from the config file; set %s or %s%s, or %s%s in the file",
					f.Env, f.Env, FileSuffix, key, strings.ToLower(FileSuffix))})
			case ok:
				raw, err := scalar(val)
				if err != nil {
					errs = append(errs, &KeyError{Key: key, From: fmt.Sprintf("%s line %d", path, val.Line), Err: err})
					continue
				}
				out[key] = raw
			case val.Kind == yaml.MappingNode && hasPrefix(known, key+"."):
				walk(val, key)
			default:
				errs = append(errs, &KeyError{Key: key, From: fmt.Sprintf("%s line %d", path, k.Line),
					Err: errors.New("unknown key (see docs/configuration.md)")})
			}
		}
	}
	walk(root.Content[0], "")
	return out, errors.Join(errs...)
}

func orRoot(p string) string {
	if p == "" {
		return "top level"
	}
	return p
}

func hasPrefix(known map[string]Field, p string) bool {
	for k := range known {
		if strings.HasPrefix(k, p) {
			return true
		}
	}
	return false
}

func scalar(n *yaml.Node) (string, error) {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Value, nil
	case yaml.SequenceNode:
		parts := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return "", errors.New("want a list of plain values")
			}
			parts = append(parts, c.Value)
		}
		return strings.Join(parts, ","), nil
	default:
		return "", errors.New("want a value, not a mapping")
	}
}

func setValue(v reflect.Value, raw string) error {
	switch {
	case v.Type() == secretType:
		v.Set(reflect.ValueOf(NewSecret(raw)))
	case v.Type() == durationType:
		d, err := time.ParseDuration(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid duration %q (use e.g. 500ms, 30s, 5m)", raw)
		}
		v.SetInt(int64(d))
	case v.Kind() == reflect.String:
		v.SetString(raw)
	case v.Kind() == reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(raw))
		if err != nil {
			return fmt.Errorf("invalid boolean %q (use true or false)", raw)
		}
		v.SetBool(b)
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("invalid integer %q", raw)
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
		if err != nil {
			return fmt.Errorf("invalid number %q", raw)
		}
		v.SetFloat(n)
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		var list []string
		for p := range strings.SplitSeq(raw, ",") {
			if p = strings.TrimSpace(p); p != "" {
				list = append(list, p)
			}
		}
		v.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("unsupported config field type %s", v.Type())
	}
	return nil
}

// KeyError is an error about one configuration key.
type KeyError struct {
	Key  string
	From string // where the value came from: default, a file and line, a variable or flag
	Err  error
}

func (e *KeyError) Error() string {
	if e.From != "" {
		return fmt.Sprintf("%s (from %s): %v", e.Key, e.From, e.Err)
	}
	return fmt.Sprintf("%s: %v", e.Key, e.Err)
}

func (e *KeyError) Unwrap() error { return e.Err }

// Validator is implemented by config sections with checks beyond the tags.
// Errors should name keys relative to the section; Validate prefixes them.
type Validator interface {
	Validate() error
}

// Validate checks the enum and required tags of cfg and calls the Validate
// method of cfg and of every nested section that has one. The joined error
// names every bad key.
func Validate(cfg any) error {
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var errs []error
	for _, f := range Fields(cfg) {
		fv := v.FieldByIndex(f.index)
		if f.Required && fv.IsZero() {
			hint := "--" + f.Key + " or " + f.Env
			if f.Secret {
				hint = f.Env + " or " + f.Env + FileSuffix
			}
			errs = append(errs, &KeyError{Key: f.Key, Err: fmt.Errorf("required; set it in the config file, %s", hint)})
		}
		if len(f.Enum) > 0 && fv.Kind() == reflect.String && fv.String() != "" {
			ok := false
			for _, e := range f.Enum {
				ok = ok || fv.String() == e
			}
			if !ok {
				errs = append(errs, &KeyError{Key: f.Key, Err: fmt.Errorf("unknown value %q (want one of %s)", fv.String(), strings.Join(f.Enum, ", "))})
			}
		}
	}
	validateSections(v, "", &errs)
	if v.CanAddr() {
		if val, ok := v.Addr().Interface().(Validator); ok {
			if err := val.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func validateSections(v reflect.Value, prefix string, errs *[]error) {
	t := v.Type()
	for i := range t.NumField() {
		sf := t.Field(i)
		key, ok := sf.Tag.Lookup("key")
		if !ok || !sf.IsExported() || sf.Type.Kind() != reflect.Struct || sf.Type == secretType {
			continue
		}
		full := key
		if prefix != "" && key != "" {
			full = prefix + "." + key
		} else if key == "" {
			full = prefix
		}
		validateSections(v.Field(i), full, errs)
		if val, ok := v.Field(i).Addr().Interface().(Validator); ok {
			if err := val.Validate(); err != nil {
				if full != "" {
					err = prefixErr(full, err)
				}
				*errs = append(*errs, err)
			}
		}
	}
}

// prefixErr qualifies the keys of a section's errors with the section's path.
func prefixErr(prefix string, err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, prefixErr(prefix, e))
		}
		return errors.Join(out...)
	}
	var ke *KeyError
	if errors.As(err, &ke) && !strings.HasPrefix(ke.Key, prefix+".") {
		return &KeyError{Key: prefix + "." + ke.Key, From: ke.From, Err: ke.Err}
	}
	return err
}

// FlagValues registers a flag for every non-secret key of cfg on fs and
// returns the map that collects the values set on the command line, to pass
// as Sources.Flags after fs.Parse.
func FlagValues(fs *flag.FlagSet, cfg any) map[string]string {
	got := map[string]string{}
	for _, f := range Fields(cfg) {
		if f.Secret {
			continue
		}
		usage := f.Doc
		if f.Default != "" {
			usage += " (default " + f.Default + ")"
		}
		fs.Func(f.Key, usage, func(s string) error {
			got[f.Key] = s
			return nil
		})
	}
	return got
}

// Effective renders cfg as sorted "key = value" lines with secrets redacted,
// for `alertsync config print`.
func Effective(cfg any) []string {
	v := reflect.ValueOf(cfg)
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	var lines []string
	for _, f := range Fields(cfg) {
		fv := v.FieldByIndex(f.index)
		var s string
		switch x := fv.Interface().(type) {
		case Secret:
			s = x.String()
		case string:
			s = RedactDSN(x)
		case []string:
			s = strings.Join(x, ",")
		default:
			s = fmt.Sprint(x)
		}
		lines = append(lines, f.Key+" = "+s)
	}
	sort.Strings(lines)
	return lines
}
