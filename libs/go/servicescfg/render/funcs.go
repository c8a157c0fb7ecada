package render

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	yamlv3 "gopkg.in/yaml.v3"
	"sigs.k8s.io/yaml"
)

// disabled are the sprig functions that would let a template read the process
// environment or reach the network. They stay defined, so that a call to one
// is reported with a clear message instead of "function not defined".
var disabledFuncs = map[string]struct{ msg, hint string }{
	"env":           {`function "env" is not available: templates cannot read the process environment`, "use .Config or .Vars"},
	"expandenv":     {`function "expandenv" is not available: templates cannot read the process environment`, "use .Config or .Vars"},
	"getHostByName": {`function "getHostByName" is not available: templates cannot reach the network`, "put the address in .Vars"},
}

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
	f["include"] = unbound
	f["tpl"] = unbound
	f["required"] = required
	f["fail"] = func(msg string) (string, error) { return "", userError(msg) }
	f["toYaml"] = toYAML
	f["toYamlPretty"] = toYAMLPretty
	f["fromYaml"] = fromYAML
	f["fromYamlArray"] = fromYAMLArray
	f["toJson"] = toJSON
	f["fromJson"] = fromJSON
	f["fromJsonArray"] = fromJSONArray
	return f
}

// required returns v, or fails with msg when v is nil or an empty string,
// like Helm's.
func required(msg string, v any) (any, error) {
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
	b, err := yaml.Marshal(v)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(string(b), "\n"), nil
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

func fromYAML(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := yaml.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("not a YAML mapping: %w", err)
	}
	return m, nil
}

func fromYAMLArray(s string) ([]any, error) {
	a := []any{}
	if err := yaml.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("not a YAML list: %w", err)
	}
	return a, nil
}

func toJSON(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func fromJSON(s string) (map[string]any, error) {
	m := map[string]any{}
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	return m, nil
}

func fromJSONArray(s string) ([]any, error) {
	a := []any{}
	if err := json.Unmarshal([]byte(s), &a); err != nil {
		return nil, fmt.Errorf("not a JSON array: %w", err)
	}
	return a, nil
}
