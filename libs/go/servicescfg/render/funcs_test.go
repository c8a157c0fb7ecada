package render

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/Masterminds/sprig/v3"

	"sigs.k8s.io/yaml"
)

// roundTripYAML is toYaml through sigs.k8s.io/yaml only, as Helm does.
func roundTripYAML(v any) (string, error) {
	b, err := yaml.Marshal(v)
	return strings.TrimSuffix(string(b), "\n"), err
}

var yamlStrings = []string{"", "a", "123", "0x1F", "1e3", "1.5", "-0", "true", "yes", "on", "n", "null", "~", "a: b", "- x",
	"#c", "'q'", `"`, "multi\nline\n", "  lead", "trail ", "é ü 日本", "<>&", "\t", "\u2028", "@at", "%p", "`b", "!t", "*a", "&a",
	"key: [1, 2]", "{x}", strings.Repeat("long words ", 20), "=", "<<", "2001-12-14", "0o17", "+1", ".inf", "NaN"}

// TestToYAMLFastPath: for the values plainYAML accepts, the direct yaml.v2
// marshal prints exactly what Helm's JSON round trip prints.
func TestToYAMLFastPath(t *testing.T) {
	var values []any
	for _, s := range yamlStrings {
		values = append(values, s, []any{s, 1}, map[string]any{s: s, "n": -7, "b": false, "nil": nil},
			map[string]string{s: s}, []string{s})
	}
	values = append(values, nil, true, 42, uint64(1<<63), int8(-3), map[string]any{}, []any{},
		map[string]any{"10": 1, "9": 2, "a": map[string]any{"z": []any{map[string]any{"k": "v"}, []any{}}}},
		testContext().Vars)
	for _, v := range values {
		if !plainYAML(v, 0) {
			t.Errorf("%#v: not plain", v)
			continue
		}
		fast, err := toYAML(v)
		if err != nil {
			t.Fatal(err)
		}
		slow, err := roundTripYAML(v)
		if err != nil {
			t.Fatal(err)
		}
		if fast != slow {
			t.Errorf("%#v:\nfast %q\nslow %q", v, fast, slow)
		}
	}
	for _, v := range []any{1.5, []byte("x"), map[string]any(nil), []any(nil), "\xff", testContext().Runtime, map[int]string{1: "a"}} {
		if plainYAML(v, 0) {
			t.Errorf("%#v: plain", v)
		}
	}
}

func FuzzToYAML(f *testing.F) {
	for _, s := range yamlStrings {
		f.Add(s, s, int64(len(s)))
	}
	f.Fuzz(func(t *testing.T, k, s string, n int64) {
		v := map[string]any{k: s, "l": []any{s, n, map[string]any{s: []any{}}}, "m": map[string]string{s: k}}
		if !plainYAML(v, 0) {
			return
		}
		slow, err := roundTripYAML(v)
		if err != nil {
			// The round trip rejects some control characters its own JSON
			// step leaves in; the direct marshal quotes them.
			return
		}
		fast, err := toYAML(v)
		if err != nil {
			t.Fatal(err)
		}
		if fast != slow {
			t.Errorf("%#v:\nfast %q\nslow %q", v, fast, slow)
		}
	})
}

func TestIndentMatchesSprig(t *testing.T) {
	sf := sprig.TxtFuncMap()
	sIndent := sf["indent"].(func(int, string) string)
	sNindent := sf["nindent"].(func(int, string) string)
	f := funcMap()
	ours := f["indent"].(func(int, string) (string, error))
	oursN := f["nindent"].(func(int, string) (string, error))
	for _, v := range []string{"", "a", "a\nb", "a\n", "\n", "\n\n", "x: 1\ny:\n  - z\n"} {
		for _, n := range []int{0, 1, 4} {
			if got, _ := ours(n, v); got != sIndent(n, v) {
				t.Errorf("indent %d %q = %q, sprig %q", n, v, got, sIndent(n, v))
			}
			if got, _ := oursN(n, v); got != sNindent(n, v) {
				t.Errorf("nindent %d %q = %q, sprig %q", n, v, got, sNindent(n, v))
			}
		}
		// sprig panics on a negative width; ours says so.
		if _, err := ours(-1, v); err == nil {
			t.Errorf("indent -1 gave no error")
		}
	}
}

// TestQuoteMatchesSprig: the quote bound here prints what sprig's does, for
// one string (its own path) and for everything else (sprig's).
func TestQuoteMatchesSprig(t *testing.T) {
	ours := sharedFuncs()["quote"].(func(...any) string)
	theirs := sprig.TxtFuncMap()["quote"].(func(...any) string)
	var args [][]any
	for _, s := range append(yamlStrings, "\xff\xfe", "\x00", "tab\there", "\u007f", "emoji \U0001F600") {
		args = append(args, []any{s}, []any{s, s})
	}
	args = append(args, nil, []any{nil}, []any{nil, "a"}, []any{42}, []any{1.5}, []any{true}, []any{[]byte("b")},
		[]any{errors.New("e")}, []any{[]string{"x"}}, []any{map[string]any{"k": 1}})
	for _, a := range args {
		if got, want := ours(a...), theirs(a...); got != want {
			t.Errorf("quote %#v = %q, sprig prints %q", a, got, want)
		}
	}
}

// TestDictMatchesSprig: the dict bound here builds what sprig's does.
func TestDictMatchesSprig(t *testing.T) {
	ours := sharedFuncs()["dict"].(func(...any) map[string]any)
	theirs := sprig.TxtFuncMap()["dict"].(func(...any) map[string]any)
	for _, args := range [][]any{
		nil, {"a"}, {"a", 1}, {"a", 1, "b"}, {"a", 1, "a", 2}, {"a", nil, "b", []any{1}},
		{1, "x"}, {"a", 1, 2, "y"}, {errors.New("e"), 1}, {[]byte("k"), 2}, {nil, 3},
	} {
		if got, want := ours(args...), theirs(args...); !reflect.DeepEqual(got, want) {
			t.Errorf("dict %#v = %#v, sprig builds %#v", args, got, want)
		}
	}
}

func TestToYAMLCyclicValue(t *testing.T) {
	m := map[string]any{"a": "b"}
	m["self"] = m
	l := []any{m}
	m["list"] = l
	if _, err := toYAML(m); err == nil {
		t.Error("toYaml of a value that contains itself gave no error")
	}
}
