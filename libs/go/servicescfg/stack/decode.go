package stack

import (
	"reflect"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// maxValues bounds how many YAML values one document may decode to, aliases
// expanded: a few anchors can otherwise describe billions of values.
const maxValues = 100_000

var durationType = reflect.TypeFor[Duration]()

// decoder fills Go values from YAML nodes strictly: every unknown field and
// every value of the wrong type is a diagnostic at its own position, and
// decoding goes on past them so that one run reports them all.
type decoder struct {
	s       *Stack
	errs    diag.List
	budget  int
	aborted bool
}

func newDecoder(s *Stack) *decoder { return &decoder{s: s, budget: maxValues} }

func (d *decoder) pos(n *yaml.Node) diag.Pos { return d.s.nodePos(n) }

// at extends a path without sharing the caller's backing array.
func at(path []any, elem any) []any {
	return append(path[:len(path):len(path)], elem)
}

// decode stores n into v. A null value leaves v as it is (zero or default).
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path []any) {
	if d.aborted {
		return
	}
	if d.budget--; d.budget < 0 {
		d.aborted = true
		d.errs.Add(d.pos(n), "document too large: it holds more than %d values once aliases are expanded", maxValues)
		return
	}
	if n = deref(n); n == nil {
		return
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return
	}
	if v.Type() == durationType {
		d.duration(n, v, path)
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		d.decode(n, v.Elem(), path)
	case reflect.Struct:
		d.structure(n, v, path)
	case reflect.Map:
		d.mapping(n, v, path)
	case reflect.Slice:
		d.sequence(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.mismatch(n, "a string", path)
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		var b bool
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" || n.Decode(&b) != nil {
			d.mismatch(n, "true or false", path)
			return
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		var i int64
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" || n.Decode(&i) != nil || v.OverflowInt(i) {
			d.mismatch(n, "an integer", path)
			return
		}
		v.SetInt(i)
	default:
		// Every field type of the model is handled above; a new one needs a case.
		d.errs.Add(d.pos(n), "%s has a type the loader cannot decode (%s)", pathString(path), v.Type())
	}
}

func (d *decoder) mismatch(n *yaml.Node, want string, path []any) {
	d.errs.Add(d.pos(n), "%s must be %s, not %s", pathString(path), want, describe(n))
}

func (d *decoder) duration(n *yaml.Node, v reflect.Value, path []any) {
	if n.Kind != yaml.ScalarNode {
		d.mismatch(n, `a duration such as "90s" or "5m"`, path)
		return
	}
	dur, err := ParseDuration(n.Value)
	if err != nil {
		d.errs.AddHint(d.pos(n), `write a Go duration such as "90s" or "5m"`, "%s: invalid duration %q", pathString(path), n.Value)
		return
	}
	v.Set(reflect.ValueOf(dur))
}

// entries lists a mapping's entries for decoding: keys must be scalars, an
// explicit key may appear once, and merged entries never override explicit
// ones.
func (d *decoder) entries(n *yaml.Node, path []any) []pair {
	var out []pair
	seen := map[string]*yaml.Node{}
	for _, p := range pairs(n) {
		k := deref(p.key)
		if k == nil || k.Kind != yaml.ScalarNode {
			if !p.merged {
				d.errs.Add(d.pos(p.key), "%s: keys must be strings, not %s", where(path), describe(p.key))
			}
			continue
		}
		if first, dup := seen[k.Value]; dup {
			if !p.merged {
				d.errs.Add(d.pos(k), "duplicate key %q in %s (first declared at line %d)", k.Value, where(path), first.Line)
			}
			continue
		}
		seen[k.Value] = k
		out = append(out, pair{key: k, value: p.value, merged: p.merged})
	}
	return out
}

// where names a path for messages, "the document" at the top.
func where(path []any) string {
	if len(path) == 0 {
		return "the document"
	}
	return pathString(path)
}

func (d *decoder) structure(n *yaml.Node, v reflect.Value, path []any) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, "a mapping", path)
		return
	}
	fields := fieldsOf(v.Type())
	for _, p := range d.entries(n, path) {
		name := p.key.Value
		i, ok := fields.index[name]
		if !ok {
			msg := "unknown field %q in " + where(path)
			if len(path) == 0 {
				msg = "unknown field %q"
			}
			if s := closest(name, fields.names); s != "" {
				d.errs.AddHint(d.pos(p.key), "did you mean "+quote(s)+"?", msg, name)
			} else {
				d.errs.Add(d.pos(p.key), msg, name)
			}
			continue
		}
		if isNull(p.value) && isRecord(v.Type().Field(i).Type) && !optional(v.Type().Field(i)) {
			// spec: null would otherwise pass as a stack with nothing in
			// it: the validator reads a null parent as a type error the
			// decoder reported.
			d.mismatch(deref(p.value), "a mapping", at(path, name))
			continue
		}
		d.decode(p.value, v.Field(i), at(path, name))
	}
}

// isNull reports whether n is a YAML null (~, null or nothing).
func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n != nil && n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// isRecord reports whether t (or what it points to) is a struct of the
// model read from a mapping, as opposed to a scalar such as Duration.
func isRecord(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.Struct && t != durationType
}

// optional reports whether a field may be left out (its tag has omitempty).
func optional(sf reflect.StructField) bool {
	_, opts, _ := strings.Cut(sf.Tag.Get("yaml"), ",")
	return strings.Contains(","+opts+",", ",omitempty,")
}

func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path []any) {
	if n.Kind != yaml.MappingNode {
		d.mismatch(n, "a mapping", path)
		return
	}
	if v.IsNil() {
		v.Set(reflect.MakeMap(v.Type()))
	}
	et := v.Type().Elem()
	for _, p := range d.entries(n, path) {
		key := reflect.ValueOf(p.key.Value).Convert(v.Type().Key())
		elem := reflect.New(et).Elem()
		if old := v.MapIndex(key); old.IsValid() {
			// Decode over what is there: defaults are merged, not replaced.
			elem.Set(old)
		} else if et.Kind() == reflect.Pointer {
			elem.Set(reflect.New(et.Elem()))
		}
		d.decode(p.value, elem, at(path, p.key.Value))
		v.SetMapIndex(key, elem)
	}
}

func (d *decoder) sequence(n *yaml.Node, v reflect.Value, path []any) {
	if n.Kind != yaml.SequenceNode {
		d.mismatch(n, "a list", path)
		return
	}
	out := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	record := isRecord(v.Type().Elem())
	for i, c := range n.Content {
		elem := out.Index(i)
		if record && isNull(c) {
			// `- ~` among services, secrets or steps: an entry without a
			// name would otherwise become a step or a Secret named "".
			d.errs.AddHint(d.pos(deref(c)), "remove the empty entry or fill it in", "%s must be a mapping, not null", pathString(at(path, i)))
		}
		if elem.Kind() == reflect.Pointer {
			// Never leave nil entries: `- ~` is an empty item, reported by
			// the validator for what it lacks.
			elem.Set(reflect.New(elem.Type().Elem()))
		}
		d.decode(c, elem, at(path, i))
	}
	v.Set(out)
}

// structFields maps the yaml names of a struct's fields to their indexes.
type structFields struct {
	index map[string]int
	names []string
}

var fieldCache sync.Map // reflect.Type -> *structFields

func fieldsOf(t reflect.Type) *structFields {
	if f, ok := fieldCache.Load(t); ok {
		return f.(*structFields)
	}
	f := &structFields{index: map[string]int{}}
	for i := range t.NumField() {
		sf := t.Field(i)
		name, ok := yamlName(sf)
		if !ok {
			continue
		}
		f.index[name] = i
		f.names = append(f.names, name)
	}
	fieldCache.Store(t, f)
	return f
}

// yamlName returns the yaml key of a struct field; false for fields that
// are not part of the file (unexported or tagged "-").
func yamlName(sf reflect.StructField) (string, bool) {
	if !sf.IsExported() {
		return "", false
	}
	tag := sf.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	switch name {
	case "-":
		return "", false
	case "":
		return strings.ToLower(sf.Name), true
	}
	return name, true
}
