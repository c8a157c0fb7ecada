package fastyaml

import (
	"maps"
	"slices"
	"strconv"
	"strings"
)

// toYaml is called for small values (resources, labels, env lists) many
// times per manifest, and go-yaml's encoder sets up kilobytes of buffers
// per call. fastYAML writes the common shapes itself: maps with plain
// string keys, lists, booleans, integers and strings that go-yaml writes
// unquoted. On anything else it reports false and toYAML uses go-yaml.
// TestFastYAMLMatchesGoYAML and FuzzFastYAML hold the output byte for byte
// to go-yaml's.

// Write appends v to b as go-yaml marshals it, and reports false, having
// written nothing useful, for a value it leaves to go-yaml.
func Write(b *strings.Builder, v any) bool { return fastYAML(b, v, 0) }

// fastYAML appends v to b as go-yaml marshals it.
func fastYAML(b *strings.Builder, v any, indent int) bool {
	if indent > 128 {
		return false // deep, or a value that contains itself: go-yaml's path reports it
	}
	switch v := v.(type) {
	case map[string]any:
		return fastMap(b, v, indent)
	case map[string]string:
		return fastMap(b, v, indent)
	case []any:
		return fastList(b, len(v), func(i int) any { return v[i] }, indent)
	case []string:
		return fastList(b, len(v), func(i int) any { return v[i] }, indent)
	}
	if !fastScalar(b, v) {
		return false
	}
	b.WriteByte('\n')
	return true
}

func fastMap[V any](b *strings.Builder, m map[string]V, indent int) bool {
	if len(m) == 0 {
		b.WriteString("{}\n")
		return true
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if !fastEntry(b, k, m[k], indent) {
			return false
		}
	}
	return true
}

// fastEntry writes one "key: value" of a map at indent.
func fastEntry(b *strings.Builder, k string, x any, indent int) bool {
	// Keys without digits sort the same in go-yaml's natural order and in
	// byte order.
	if !plainWord(k) || strings.ContainsAny(k, "0123456789") {
		return false
	}
	pad(b, indent)
	b.WriteString(k)
	b.WriteByte(':')
	switch x.(type) {
	case map[string]any, map[string]string:
		if size(x) == 0 {
			b.WriteString(" {}\n")
			return true
		}
		b.WriteByte('\n')
		return fastYAML(b, x, indent+2)
	case []any, []string:
		if size(x) == 0 {
			b.WriteString(" []\n")
			return true
		}
		b.WriteByte('\n')
		return fastYAML(b, x, indent) // lists sit at their key's indent
	}
	b.WriteByte(' ')
	if !fastScalar(b, x) {
		return false
	}
	b.WriteByte('\n')
	return true
}

func fastList(b *strings.Builder, n int, item func(int) any, indent int) bool {
	if n == 0 {
		b.WriteString("[]\n")
		return true
	}
	for i := range n {
		pad(b, indent)
		switch x := item(i).(type) {
		case map[string]any, map[string]string:
			if size(x) == 0 {
				b.WriteString("- {}\n")
				continue
			}
			// "- " then the map's first key on the same line, the rest
			// indented under it.
			var sub strings.Builder
			if !fastYAML(&sub, x, indent+2) {
				return false
			}
			b.WriteString("- ")
			b.WriteString(sub.String()[indent+2:])
		case []any, []string:
			return false // lists of lists: go-yaml
		default:
			b.WriteString("- ")
			if !fastScalar(b, x) {
				return false
			}
			b.WriteByte('\n')
		}
	}
	return true
}

func size(v any) int {
	switch v := v.(type) {
	case map[string]any:
		return len(v)
	case map[string]string:
		return len(v)
	case []any:
		return len(v)
	case []string:
		return len(v)
	}
	return -1
}

func pad(b *strings.Builder, n int) {
	for range n {
		b.WriteByte(' ')
	}
}

// fastScalar writes a scalar go-yaml writes without quotes, or reports false.
func fastScalar(b *strings.Builder, v any) bool {
	switch v := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(v))
	case int:
		b.WriteString(strconv.Itoa(v))
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case string:
		if !plainWord(v) {
			return false
		}
		b.WriteString(v)
	default:
		return false
	}
	return true
}

// plainWord reports a string go-yaml writes as it is: letters, digits and
// . _ / -, starting with a letter or digit, that YAML 1.1 reads back as
// this same string (not a boolean, null, number or timestamp).
func plainWord(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '/' || c == '-') {
			return false
		}
	}
	c := s[0]
	switch {
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		_, special := yaml11Word(s)
		return !special
	case c >= '0' && c <= '9':
		// Only when a letter no number or date has makes it a string:
		// 100m, 128Mi.
		return strings.IndexFunc(s, func(r rune) bool {
			return r >= 'g' && r <= 'z' && r != 'o' && r != 'x' && r != 'b' || r >= 'G' && r <= 'Z' && r != 'O' && r != 'X' && r != 'B'
		}) >= 0 && !strings.ContainsAny(s, "eE")
	}
	return false
}
