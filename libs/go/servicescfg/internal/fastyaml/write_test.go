package fastyaml

import (
	"fmt"
	"strings"
	"testing"

	yamlv2 "go.yaml.in/yaml/v2"
	"sigs.k8s.io/yaml"
)

// checkFastYAML compares fastYAML with go-yaml and with Helm's path
// (sigs.k8s.io/yaml) whenever fastYAML takes the value.
func checkFastYAML(t *testing.T, v any) bool {
	t.Helper()
	var b strings.Builder
	if !fastYAML(&b, v, 0) {
		return false
	}
	want, err := yamlv2.Marshal(v)
	if err != nil {
		t.Fatalf("go-yaml cannot marshal %#v: %v", v, err)
	}
	if b.String() != string(want) {
		t.Fatalf("fastYAML(%#v):\n%s\ngo-yaml:\n%s", v, b.String(), want)
	}
	helm, err := yaml.Marshal(v)
	if err == nil && b.String() != string(helm) {
		t.Fatalf("fastYAML(%#v):\n%s\nsigs.k8s.io/yaml:\n%s", v, b.String(), helm)
	}
	return true
}

func TestFastYAMLMatchesGoYAML(t *testing.T) {
	values := []any{
		map[string]any{"requests": map[string]any{"cpu": "100m", "memory": "128Mi"}, "limits": map[string]any{"memory": "128Mi"}},
		map[string]string{"app.kubernetes.io/name": "api", "app.kubernetes.io/part-of": "codex-k8s", "tier": "backend"},
		map[string]any{"b": []any{"x", "z"}, "a": []any{map[string]any{"name": "http", "port": 80}, map[string]any{}}, "c": map[string]any{}, "d": []any{}},
		map[string]any{"list": []any{map[string]any{"k": []any{"v"}, "m": map[string]any{"enabled": true}}}},
		[]any{"a", 1, int64(-2), true, nil},
		[]string{"ALL"},
		map[string]any{"on": "x"}, map[string]any{"a10": 1, "a9": 2}, map[string]any{"k": "yes"},
		map[string]any{"k": "1e5"}, map[string]any{"k": "0x1F"}, map[string]any{"k": "2001-12-14"}, map[string]any{"k": "v1.2.3"},
		map[string]any{"k": "-x"}, map[string]any{"k": "a b"}, map[string]any{"k": ""}, map[string]any{"k": 1.5},
		map[string]any{"k": "127.0.0.1"}, map[string]any{"k": "10Gi"}, map[string]any{"k": "1abc"}, map[string]any{"k": "NaN"},
	}
	for i, v := range values {
		// The first six are the shapes manifests use: the fast path must
		// take them; the rest may go to go-yaml, but must match if taken.
		if !checkFastYAML(t, v) && i < 6 {
			t.Errorf("fastYAML did not take the common shape %#v", v)
		}
	}
}

// FuzzFastYAML builds values from YAML text and holds fastYAML to go-yaml.
func FuzzFastYAML(f *testing.F) {
	for _, s := range []string{"a: 1\nb: [x, y]\n", "requests: {cpu: 100m, memory: 128Mi}\n", "- a\n- {b: c}\n", "k: 2001-12-14t21\n", "x: [{a: [b]}]\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var raw any
		if yamlv2.Unmarshal([]byte(text), &raw) != nil {
			return
		}
		v, ok := stringKeys(raw)
		if !ok {
			return
		}
		checkFastYAML(t, v)
	})
}

// stringKeys turns go-yaml's map[any]any into map[string]any.
func stringKeys(v any) (any, bool) {
	switch v := v.(type) {
	case map[any]any:
		m := map[string]any{}
		for k, x := range v {
			ks, ok := k.(string)
			if !ok {
				return nil, false
			}
			y, ok := stringKeys(x)
			if !ok {
				return nil, false
			}
			m[ks] = y
		}
		return m, true
	case []any:
		out := make([]any, len(v))
		for i, x := range v {
			y, ok := stringKeys(x)
			if !ok {
				return nil, false
			}
			out[i] = y
		}
		return out, true
	case float64:
		return nil, false
	default:
		return v, fmt.Sprint(v) != "" || v == nil
	}
}
