package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"
	"unicode/utf8"

	"github.com/Masterminds/sprig/v3"
	yamlv2 "go.yaml.in/yaml/v2"
	yamlv3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/fastyaml"
)

// disabledFuncs are the sprig functions a template may not call: those that
// would let it read the process environment or reach the network, and those
// whose result differs from one run to the next (the clock, randomness, keys
// and certificates generated on the spot, salted hashes, the host's time
// zone), since a plan must be the same on every run. They stay defined, so
// that a call to one is reported with a clear message instead of "function
// not defined", when the text is checked (untaken branches too).
var disabledFuncs = func() map[string]struct{ msg, hint string } {
	m := map[string]struct{ msg, hint string }{
		"env":           {`function "env" is not available: templates cannot read the process environment`, "use .Config or .Vars"},
		"expandenv":     {`function "expandenv" is not available: templates cannot read the process environment`, "use .Config or .Vars"},
		"getHostByName": {`function "getHostByName" is not available: templates cannot reach the network`, "put the address in .Vars"},
	}
	const same = "a plan must be the same on every run"
	for _, name := range []string{"now", "ago", "date", "dateInZone", "date_in_zone", "htmlDate", "htmlDateInZone", "toDate", "mustToDate"} {
		m[name] = struct{ msg, hint string }{
			fmt.Sprintf("function %q is not available: it reads the clock or the host's time zone, and %s", name, same),
			"put a fixed date in .Vars"}
	}
	for _, name := range []string{"randAlpha", "randAlphaNum", "randAscii", "randNumeric", "randBytes", "randInt", "uuidv4", "shuffle",
		"genPrivateKey", "genCA", "genCAWithKey", "genSelfSignedCert", "genSelfSignedCertWithKey", "genSignedCert", "genSignedCertWithKey",
		"htpasswd", "bcrypt", "encryptAES"} {
		m[name] = struct{ msg, hint string }{
			fmt.Sprintf("function %q is not available: its result is random, and %s", name, same),
			"declare a generated value in spec.secrets[].generate (generated once, kept in the cluster) and refer to the Secret"}
	}
	return m
}()

// builtinNames lists text/template's own functions, for parsing without a
// template.Template (parse.Parse checks that every function name exists).
var builtinNames = func() map[string]any {
	m := map[string]any{}
	for _, n := range []string{"and", "call", "html", "index", "slice", "js", "len", "not", "or",
		"print", "printf", "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne"} {
		m[n] = true
	}
	return m
}()

// userError is an error whose message stands on its own at the position of
// the call that returned it: required, fail, a missing template, the
// recursion limit.
type userError string

func (e userError) Error() string { return string(e) }

// sharedFuncs is funcMap built once; it is only read.
var sharedFuncs = sync.OnceValue(funcMap)

// sharedBase is an empty template set with the functions: New clones it,
// which copies the function table instead of validating it again.
var sharedBase = sync.OnceValue(func() *template.Template {
	return template.New(mainName).Funcs(sharedFuncs())
})

// funcMap returns the function set every template sees. include and tpl are
// placeholders here: each template set binds its own (see instance.funcs).
func funcMap() template.FuncMap {
	f := sprig.TxtFuncMap()
	for name, d := range disabledFuncs {
		msg := d.msg + " (" + d.hint + ")"
		f[name] = func(...any) (string, error) { return "", userError(msg) }
	}
	unbound := func(string, any) (string, error) {
		return "", userError("include and tpl are only available while rendering")
	}
	// The same results as sprig's, with one allocation instead of three:
	// manifests call these around every include.
	f["indent"] = func(spaces int, v string) (string, error) {
		if spaces < 0 {
			return "", userError(fmt.Sprintf("indent: negative width %d", spaces))
		}
		return indent(spaces, v), nil
	}
	f["nindent"] = func(spaces int, v string) (string, error) {
		if spaces < 0 {
			return "", userError(fmt.Sprintf("nindent: negative width %d", spaces))
		}
		return nindent(spaces, v), nil
	}
	// quote wraps most values in manifests: a single string needs neither
	// sprig's variadic join nor fmt, and strconv.Quote is what %q writes.
	sprigQuote := f["quote"].(func(...any) string)
	f["quote"] = func(v ...any) string {
		if len(v) == 1 {
			if s, ok := v[0].(string); ok {
				return strconv.Quote(s)
			}
		}
		return sprigQuote(v...)
	}
	// dict builds the argument of most includes: sized up front, since
	// sprig's grows its map as it goes (same result, TestDictMatchesSprig).
	sprigDict := f["dict"].(func(...any) map[string]any)
	f["dict"] = func(v ...any) map[string]any {
		d := make(map[string]any, (len(v)+1)/2)
		for i := 0; i < len(v); i += 2 {
			key, ok := v[i].(string)
			if !ok {
				return sprigDict(v...) // its own reading of other keys
			}
			if i+1 >= len(v) {
				d[key] = ""
				continue
			}
			d[key] = v[i+1]
		}
		return d
	}
	// Go randomises map order: keys and values are sorted by key, so that
	// their order is the same on every run (sortAlpha stays harmless).
	f["keys"] = sortedKeys
	f["values"] = sortedValues
	f["include"] = unbound
	f["tpl"] = unbound
	f["required"] = required
	f["fail"] = func(msg string) (string, error) { return "", userError(cut(msg, DefaultLimits.ErrorText)) }
	f["toYaml"] = toYAML
	f["toYamlPretty"] = toYAMLPretty
	f["fromYaml"] = decoder[map[string]any](yamlUnmarshal, "a YAML mapping")
	f["fromYamlArray"] = decoder[[]any](yamlUnmarshal, "a YAML list")
	f["toJson"] = toJSON
	f["fromJson"] = decoder[map[string]any](json.Unmarshal, "a JSON object")
	f["fromJsonArray"] = decoder[[]any](json.Unmarshal, "a JSON array")
	return f
}

// indent prefixes every line of v with spaces, as sprig's indent does.
func indent(spaces int, v string) string {
	if spaces == 0 {
		return v
	}
	return indentTo(false, spaces, v)
}

// nindent is "\n" + indent(spaces, v), in one allocation.
func nindent(spaces int, v string) string {
	return indentTo(true, spaces, v)
}

func indentTo(newline bool, spaces int, v string) string {
	lines := strings.Count(v, "\n") + 1
	var b strings.Builder
	b.Grow(1 + len(v) + lines*spaces)
	if newline {
		b.WriteByte('\n')
	}
	for {
		for range spaces {
			b.WriteByte(' ')
		}
		i := strings.IndexByte(v, '\n')
		if i < 0 {
			b.WriteString(v)
			return b.String()
		}
		b.WriteString(v[:i+1])
		v = v[i+1:]
	}
}

// required returns v, or fails with msg when v is nil or an empty string,
// like Helm's.
func required(msg string, v any) (any, error) {
	msg = cut(msg, DefaultLimits.ErrorText)
	if v == nil {
		return nil, userError(msg)
	}
	if s, ok := v.(string); ok && s == "" {
		return v, userError(msg)
	}
	return v, nil
}

// toYAML marshals like Helm's toYaml (sigs.k8s.io/yaml, so JSON tags and
// Kubernetes types behave as in kubectl), without the trailing newline, but
// fails instead of rendering an empty string.
func toYAML(v any) (string, error) {
	var fast strings.Builder
	if fastyaml.Write(&fast, v) {
		return strings.TrimSuffix(fast.String(), "\n"), nil
	}
	var b []byte
	var err error
	if plainYAML(v, 0) {
		// The JSON round trip of sigs.k8s.io/yaml would give the same bytes:
		// skip it, it costs more than the rest of toYaml.
		b, err = yamlv2.Marshal(v)
	} else {
		b, err = yaml.Marshal(v)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
}

// plainYAML reports whether yaml.v2 marshals v to the same bytes as
// sigs.k8s.io/yaml's JSON round trip does: nil, bools, integers, valid UTF-8
// strings, and non-nil maps with string keys and slices of those (what
// dict, list and the template context are made of). Floats, []byte, nil
// maps and slices, structs and anything else take the round trip.
func plainYAML(v any, depth int) bool {
	if depth > 64 {
		return false
	}
	switch v := v.(type) {
	case nil, bool, int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return true
	case string:
		return utf8.ValidString(v)
	case []string:
		return v != nil && allValid(v)
	case map[string]string:
		if v == nil {
			return false
		}
		for k, x := range v {
			if !utf8.ValidString(k) || !utf8.ValidString(x) {
				return false
			}
		}
		return true
	case []any:
		if v == nil {
			return false
		}
		for _, x := range v {
			if !plainYAML(x, depth+1) {
				return false
			}
		}
		return true
	case map[string]any:
		if v == nil {
			return false
		}
		for k, x := range v {
			if !utf8.ValidString(k) || !plainYAML(x, depth+1) {
				return false
			}
		}
		return true
	}
	return false
}

func allValid(ss []string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}

// toYAMLPretty is toYAML with two-space indentation that also indents lists
// under their key.
func toYAMLPretty(v any) (string, error) {
	j, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	var obj any
	if err := yamlv3.Unmarshal(j, &obj); err != nil {
		return "", err
	}
	var buf bytes.Buffer
	enc := yamlv3.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(obj); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}

// decoder returns a from* function: s decoded into a T by unmarshal, or an
// error saying what s should have been.
func decoder[T any](unmarshal func([]byte, any) error, what string) func(string) (T, error) {
	return func(s string) (T, error) {
		var v T
		if err := unmarshal([]byte(s), &v); err != nil {
			return v, fmt.Errorf("not %s: %w", what, err)
		}
		return v, nil
	}
}

// yamlUnmarshal decodes like Helm's fromYaml: sigs.k8s.io/yaml, YAML 1.1.
func yamlUnmarshal(b []byte, v any) error { return yaml.Unmarshal(b, v) }

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// sortedKeys is sprig's keys, sorted.
func sortedKeys(dicts ...map[string]any) []string {
	var out []string
	for _, d := range dicts {
		for k := range d {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// sortedValues is sprig's values, in the order of their sorted keys.
func sortedValues(dict map[string]any) []any {
	out := make([]any, 0, len(dict))
	for _, k := range slices.Sorted(maps.Keys(dict)) {
		out = append(out, dict[k])
	}
	return out
}
