package schemas

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
)

// library holds every named Avro type of a set of .avsc files, each stored
// flat: its name and namespace explicit, named types nested in it replaced by
// references, every reference a full name. resolve composes a self-contained
// schema from it, so that a shared type such as alertsync.Source is written
// once, in one file, and inlined into each subject that uses it.
type library struct {
	defs  map[string]*object // full name → flat definition
	files map[string]string  // full name → file that defines it
}

var primitives = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

func isNamedKind(t any) bool {
	switch t {
	case "record", "error", "enum", "fixed":
		return true
	}
	return false
}

// loadLibrary reads every *.avsc file under fsys. Each file holds one JSON
// schema, usually a named type; named types may be nested and may reference
// types of other files by full name (or by short name within a namespace).
func loadLibrary(fsys fs.FS) (*library, error) {
	type doc struct {
		file string
		root any
	}
	var docs []doc
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || path.Ext(p) != ".avsc" {
			return nil
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		root, err := parseJSON(data)
		if err != nil {
			return fmt.Errorf("parsing %s: %w", p, err)
		}
		docs = append(docs, doc{file: p, root: root})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("reading schema files: %w", err)
	}

	lib := &library{defs: make(map[string]*object), files: make(map[string]string)}
	// Pass 1: learn every full name, so that pass 2 can resolve short
	// references the way Avro does (enclosing namespace first).
	for _, d := range docs {
		if err := lib.collect(d.file, d.root, ""); err != nil {
			return nil, err
		}
	}
	// Pass 2: store each definition flat with full-name references.
	for _, d := range docs {
		if _, err := lib.flatten(d.file, d.root, ""); err != nil {
			return nil, err
		}
	}
	return lib, nil
}

// fullName applies the Avro naming rules to a definition met inside
// enclosing namespace encl, returning its full name and its own namespace.
func fullName(def *object, encl string) (full, ns string, err error) {
	name := def.str("name")
	if name == "" {
		return "", "", fmt.Errorf("%s without a name", def.str("type"))
	}
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name, name[:i], nil
	}
	ns = encl
	if v, ok := def.get("namespace"); ok {
		s, isStr := v.(string)
		if !isStr {
			return "", "", fmt.Errorf("%s: namespace is not a string", name)
		}
		ns = s
	}
	if ns == "" {
		// Implementations disagree on how a type of the null namespace nests
		// in a namespaced one (hamba/avro ignores "namespace": ""), so the
		// library has none.
		return "", "", fmt.Errorf("%s %s has no namespace", def.str("type"), name)
	}
	return ns + "." + name, ns, nil
}

func simpleName(full string) string {
	return full[strings.LastIndexByte(full, '.')+1:]
}

func (l *library) collect(file string, v any, encl string) error {
	switch t := v.(type) {
	case []any:
		for _, m := range t {
			if err := l.collect(file, m, encl); err != nil {
				return err
			}
		}
	case *object:
		typ, _ := t.get("type")
		switch {
		case isNamedKind(typ):
			full, ns, err := fullName(t, encl)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			if prev, dup := l.files[full]; dup {
				return fmt.Errorf("%s: type %s already defined in %s", file, full, prev)
			}
			l.files[full] = file
			if typ == "record" || typ == "error" {
				fields, _ := t.get("fields")
				arr, ok := fields.([]any)
				if !ok {
					return fmt.Errorf("%s: record %s: fields is not an array", file, full)
				}
				for _, f := range arr {
					fo, ok := f.(*object)
					if !ok {
						return fmt.Errorf("%s: record %s: field is not an object", file, full)
					}
					ft, _ := fo.get("type")
					if err := l.collect(file, ft, ns); err != nil {
						return err
					}
				}
			}
		case typ == "array":
			items, _ := t.get("items")
			return l.collect(file, items, encl)
		case typ == "map":
			values, _ := t.get("values")
			return l.collect(file, values, encl)
		default:
			return l.collect(file, typ, encl)
		}
	}
	return nil
}

// ref resolves a type name written inside enclosing namespace encl.
func (l *library) ref(file, name, encl string) (string, error) {
	if primitives[name] {
		return name, nil
	}
	if strings.Contains(name, ".") {
		if _, ok := l.files[name]; ok {
			return name, nil
		}
	} else {
		if encl != "" {
			if _, ok := l.files[encl+"."+name]; ok {
				return encl + "." + name, nil
			}
		}
		if _, ok := l.files[name]; ok {
			return name, nil
		}
	}
	return "", fmt.Errorf("%s: unknown type %q", file, name)
}

// flatten returns v with every named definition replaced by its full name,
// storing the definitions in l.defs.
func (l *library) flatten(file string, v any, encl string) (any, error) {
	switch t := v.(type) {
	case string:
		return l.ref(file, t, encl)
	case []any:
		out := make([]any, len(t))
		for i, m := range t {
			fm, err := l.flatten(file, m, encl)
			if err != nil {
				return nil, err
			}
			out[i] = fm
		}
		return out, nil
	case *object:
		typ, _ := t.get("type")
		switch {
		case isNamedKind(typ):
			full, ns, err := fullName(t, encl)
			if err != nil {
				return nil, err
			}
			def := newObject()
			def.set("type", typ)
			def.set("name", simpleName(full))
			def.set("namespace", ns)
			for _, k := range t.keys {
				switch k {
				case "type", "name", "namespace":
					continue
				case "fields":
					fields, err := l.flattenFields(file, t.vals[k], ns)
					if err != nil {
						return nil, fmt.Errorf("%s: record %s: %w", file, full, err)
					}
					def.set(k, fields)
				default:
					def.set(k, t.vals[k])
				}
			}
			l.defs[full] = def
			return full, nil
		case typ == "array" || typ == "map":
			child := "items"
			if typ == "map" {
				child = "values"
			}
			c := t.clone()
			inner, ok := t.get(child)
			if !ok {
				return nil, fmt.Errorf("%s: %s without %s", file, typ, child)
			}
			fc, err := l.flatten(file, inner, encl)
			if err != nil {
				return nil, err
			}
			c.set(child, fc)
			return c, nil
		default:
			inner, ok := t.get("type")
			if !ok {
				return nil, fmt.Errorf("%s: schema object without type", file)
			}
			if s, isStr := inner.(string); isStr && primitives[s] {
				return t, nil // primitive, possibly with a logical type
			}
			c := t.clone()
			fc, err := l.flatten(file, inner, encl)
			if err != nil {
				return nil, err
			}
			c.set("type", fc)
			return c, nil
		}
	default:
		return nil, fmt.Errorf("%s: unexpected schema element %v", file, v)
	}
}

func (l *library) flattenFields(file string, v any, ns string) ([]any, error) {
	arr, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("fields is not an array")
	}
	out := make([]any, len(arr))
	for i, f := range arr {
		fo, ok := f.(*object)
		if !ok {
			return nil, fmt.Errorf("field %d is not an object", i)
		}
		ft, ok := fo.get("type")
		if !ok {
			return nil, fmt.Errorf("field %q without type", fo.str("name"))
		}
		flat, err := l.flatten(file, ft, ns)
		if err != nil {
			return nil, fmt.Errorf("field %q: %w", fo.str("name"), err)
		}
		c := fo.clone()
		c.set("type", flat)
		out[i] = c
	}
	return out, nil
}

// resolve returns the self-contained schema of the named type root as
// compact JSON: each named type it uses is defined at its first use and
// referenced by full name after that.
func (l *library) resolve(root string) (string, error) {
	if _, ok := l.defs[root]; !ok {
		return "", fmt.Errorf("unknown type %q", root)
	}
	r := resolver{lib: l, done: make(map[string]bool)}
	v := r.emit(root, "")
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("encoding resolved schema %s: %w", root, err)
	}
	return string(b), nil
}

// names returns every defined full name, sorted.
func (l *library) names() []string {
	out := make([]string, 0, len(l.defs))
	for n := range l.defs {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

type resolver struct {
	lib  *library
	done map[string]bool
}

func (r *resolver) emit(v any, encl string) any {
	switch t := v.(type) {
	case string:
		if primitives[t] || r.done[t] {
			return t
		}
		r.done[t] = true
		return r.emitDef(r.lib.defs[t], encl)
	case []any:
		out := make([]any, len(t))
		for i, m := range t {
			out[i] = r.emit(m, encl)
		}
		return out
	case *object:
		typ, _ := t.get("type")
		c := newObject()
		for _, k := range t.keys {
			switch {
			case k == "items" || k == "values":
				c.set(k, r.emit(t.vals[k], encl))
			case k == "type" && typ != "array" && typ != "map":
				c.set(k, r.emit(t.vals[k], encl))
			default:
				c.set(k, t.vals[k])
			}
		}
		return c
	default:
		return v
	}
}

func (r *resolver) emitDef(def *object, encl string) *object {
	ns := def.str("namespace")
	out := newObject()
	for _, k := range def.keys {
		switch k {
		case "namespace":
			if ns != encl {
				out.set(k, ns)
			}
		case "fields":
			fields := def.vals[k].([]any)
			of := make([]any, len(fields))
			for i, f := range fields {
				fo := f.(*object)
				c := newObject()
				for _, fk := range fo.keys {
					if fk == "type" {
						c.set(fk, r.emit(fo.vals[fk], ns))
					} else {
						c.set(fk, fo.vals[fk])
					}
				}
				of[i] = c
			}
			out.set(k, of)
		default:
			out.set(k, def.vals[k])
		}
	}
	return out
}
