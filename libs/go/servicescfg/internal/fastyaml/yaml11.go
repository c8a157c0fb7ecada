package fastyaml

// The YAML 1.1 scalar rules that kubectl's decoding (go-yaml v2) applies
// and that the fast reader and writer must respect to give the same
// results.

// words are the plain scalars YAML 1.1 reads as booleans or null.
var words = func() map[string]any {
	m := map[string]any{}
	for v, list := range map[bool][]string{
		true:  {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"},
		false: {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"},
	} {
		for _, w := range list {
			m[w] = v
		}
	}
	for _, w := range []string{"null", "Null", "NULL"} {
		m[w] = nil
	}
	return m
}()

// yaml11Word reports whether the plain scalar s is a YAML 1.1 boolean or null
// word, and its value (true, false or nil).
func yaml11Word(s string) (v any, ok bool) {
	if len(s) > 5 { // the longest is "false"
		return nil, false
	}
	v, ok = words[s]
	return v, ok
}
