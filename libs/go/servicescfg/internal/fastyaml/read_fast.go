package fastyaml

import (
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	yaml "go.yaml.in/yaml/v2"
)

// Reading every rendered document with go-yaml is most of a plan's cost
// (the renderer is cheaper than the parse of its output). Rendered manifests
// almost always use a small part of YAML: block mappings and sequences
// indented with spaces, one-line plain or quoted scalars, literal block
// scalars, comments. fastDecode reads exactly that part, producing the values
// kubectl's decoding produces, and gives up (ok=false) on anything else:
// flow collections other than {} and [], anchors, aliases, tags, folded
// scalars, multi-line plain or quoted scalars, duplicate keys, tabs. The
// caller then decodes with go-yaml, which also reports the errors.
//
// TestDecodeMatchesKubectl and FuzzDecodeMatchesKubectl hold the two paths
// to the same values: whatever fastDecode accepts must decode the same way
// through sigs.k8s.io/yaml.

type fastLine struct {
	indent int
	text   string // without indentation; comments are not removed
	raw    string // the whole line, for block scalars
}

type fastParser struct {
	lines []fastLine
	i     int
	depth int // nesting of collections, bounded by maxFastDepth
	// identity keeps only what names the object: of the top mapping, the
	// values of apiVersion, kind and metadata. Everything else is read and
	// checked as always, but not built.
	identity bool
	skip     int                   // > 0 while reading a value that is not kept
	seen     []map[string]struct{} // per depth: keys of a mapping not kept
}

// identityKey reports the top-level keys an identity-only decode keeps.
func identityKey(k string) bool { return k == "apiVersion" || k == "kind" || k == "metadata" }

// maxFastDepth bounds nesting; deeper documents go to go-yaml, which has
// limits of its own.
const maxFastDepth = 64

// parsers are reused: a plan reads thousands of documents.
var parsers = sync.Pool{New: func() any { return &fastParser{} }}

// fastDecode parses doc when it stays inside the subset described above.
// With identity set, the map holds only apiVersion, kind and metadata (other
// top-level keys map to nil); what it accepts does not change.
func fastDecode(doc []byte, identity bool) (map[string]any, bool) {
	s := string(doc)
	if !printable(s) {
		return nil, false // tabs, CRs, control characters: go-yaml decides
	}
	p := parsers.Get().(*fastParser)
	defer func() {
		clear(p.lines) // drop the strings, keep the capacity
		p.lines, p.i, p.depth, p.skip = p.lines[:0], 0, 0, 0
		parsers.Put(p)
	}()
	for line := range strings.SplitSeq(s, "\n") {
		text := strings.TrimLeft(line, " ")
		p.lines = append(p.lines, fastLine{indent: len(line) - len(text), text: text, raw: line})
	}
	if !p.next() {
		return nil, false
	}
	first := p.lines[p.i]
	if isSeqEntry(first.text) {
		return nil, false
	}
	p.identity = identity
	v, ok := p.mapping(first.indent)
	if !ok || p.next() {
		return nil, false // not a mapping, or text left after it
	}
	return v, true
}

// printable reports whether s is valid UTF-8 holding only line feeds and
// the characters YAML calls printable, tabs, CRs and byte order marks aside.
func printable(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c != '\n' && (c < 0x20 || c == 0x7f) {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return false
		case r == 0x85, r >= 0xA0 && r <= 0xD7FF, r >= 0xE000 && r <= 0xFFFD && r != 0xFEFF, r >= 0x10000 && r <= 0x10FFFF:
		default:
			return false
		}
		i += size
	}
	return true
}

// next skips blank and comment lines; it reports whether a line is left.
func (p *fastParser) next() bool {
	for p.i < len(p.lines) {
		t := p.lines[p.i].text
		if t != "" && t[0] != '#' {
			return true
		}
		p.i++
	}
	return false
}

func isSeqEntry(t string) bool { return t == "-" || strings.HasPrefix(t, "- ") }

// mapping reads the block mapping whose keys are at indent.
func (p *fastParser) mapping(indent int) (map[string]any, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	var m map[string]any
	var seen map[string]struct{}
	if p.skip == 0 {
		m = map[string]any{}
	} else {
		// Not kept: only its keys, for the duplicate check, in a set
		// reused by every mapping at this depth.
		for len(p.seen) <= p.depth {
			p.seen = append(p.seen, map[string]struct{}{})
		}
		seen = p.seen[p.depth]
		clear(seen)
	}
	top := p.identity && p.depth == 1
	for p.next() {
		l := p.lines[p.i]
		if l.indent < indent {
			break
		}
		if l.indent > indent || isSeqEntry(l.text) {
			return nil, false
		}
		key, rest, ok := splitKey(l.text)
		if !ok {
			return nil, false
		}
		if m != nil {
			_, ok = m[key]
		} else {
			_, ok = seen[key]
			seen[key] = struct{}{}
		}
		if ok {
			return nil, false // a duplicate key
		}
		p.i++
		drop := top && !identityKey(key)
		if drop {
			p.skip++
		}
		v, ok := p.value(indent, rest, true)
		if drop {
			p.skip--
			v = nil
		}
		if !ok {
			return nil, false
		}
		if m != nil {
			m[key] = v
		}
	}
	return m, true
}

// sequence reads the block sequence whose dashes are at indent.
func (p *fastParser) sequence(indent int) ([]any, bool) {
	if p.depth++; p.depth > maxFastDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	var out []any
	if p.skip == 0 {
		out = []any{}
	}
	for p.next() {
		l := p.lines[p.i]
		if l.indent < indent || (l.indent == indent && !isSeqEntry(l.text)) {
			break
		}
		if l.indent > indent {
			return nil, false
		}
		item := strings.TrimLeft(l.text[1:], " ")
		if item == "" || item[0] == '#' {
			p.i++
			v, ok := p.nested(indent, false)
			if !ok {
				return nil, false
			}
			out = p.add(out, v)
			continue
		}
		if isSeqEntry(item) {
			return nil, false // "- - x"
		}
		if _, _, isMap := splitKey(item); isMap {
			// "- key: value": a mapping whose keys line up with this key.
			p.lines[p.i] = fastLine{indent: l.indent + len(l.text) - len(item), text: item, raw: l.raw}
			v, ok := p.mapping(p.lines[p.i].indent)
			if !ok {
				return nil, false
			}
			out = p.add(out, v)
			continue
		}
		p.i++
		v, ok := p.value(indent, item, false)
		if !ok {
			return nil, false
		}
		out = p.add(out, v)
	}
	return out, true
}

// add appends v to a sequence that is kept.
func (p *fastParser) add(out []any, v any) []any {
	if p.skip > 0 {
		return out
	}
	return append(out, v)
}

// nested reads the block under a key or dash at indent that has nothing
// after it on its own line. A sequence may sit at the key's own indent.
func (p *fastParser) nested(indent int, underKey bool) (any, bool) {
	if !p.next() {
		return nil, true
	}
	l := p.lines[p.i]
	switch {
	case l.indent > indent && isSeqEntry(l.text):
		return p.sequence(l.indent)
	case l.indent > indent:
		return p.mapping(l.indent)
	case l.indent == indent && underKey && isSeqEntry(l.text):
		return p.sequence(indent)
	}
	return nil, true
}

// value reads what follows "key:" or "- " on a line (rest), at a parent
// indent; the line has been consumed.
func (p *fastParser) value(indent int, rest string, underKey bool) (any, bool) {
	if rest == "" || rest[0] == '#' {
		return p.nested(indent, underKey)
	}
	var v any
	var ok bool
	switch rest[0] {
	case '|':
		return p.literal(indent, rest)
	case '"':
		var s, tail string
		s, tail, ok = doubleQuoted(rest)
		v, ok = s, ok && isComment(tail)
	case '\'':
		var s, tail string
		s, tail, ok = singleQuoted(rest)
		v, ok = s, ok && isComment(tail)
	case '{', '[':
		var tail string
		v, tail, ok = flowNode(rest, p.depth)
		ok = ok && isComment(tail)
	default:
		v, ok = plainScalar(stripComment(rest))
	}
	if !ok {
		return nil, false
	}
	// A more indented line after a scalar would continue it (or be an
	// error): go-yaml decides.
	if p.next() && p.lines[p.i].indent > indent {
		return nil, false
	}
	return v, true
}

// literal reads a literal block scalar ("|" or "|-") under indent.
func (p *fastParser) literal(indent int, header string) (any, bool) {
	strip := false
	switch stripComment(header) {
	case "|":
	case "|-":
		strip = true
	default:
		return nil, false // keep chomping, indentation indicators, folded scalars
	}
	var body []string
	block, lastContent := -1, -1
	for ; p.i < len(p.lines); p.i++ {
		l := p.lines[p.i]
		if l.text == "" {
			if l.raw != "" {
				return nil, false // a line of spaces only: go-yaml decides
			}
			body = append(body, "")
			continue
		}
		if block < 0 {
			if l.indent <= indent {
				break
			}
			block = l.indent
		}
		if l.indent < block {
			break
		}
		body = append(body, l.raw[block:])
		lastContent = p.i
	}
	// Trailing blank lines are chomped, not content.
	end := len(body)
	for end > 0 && body[end-1] == "" {
		end--
	}
	var text string
	if p.skip == 0 {
		text = strings.Join(body[:end], "\n")
		if !strip && end > 0 && lastContent < len(p.lines)-1 {
			text += "\n" // clip: the last line's break, when it has one
		}
	}
	if p.next() && p.lines[p.i].indent > indent {
		return nil, false
	}
	return text, true
}

// flowNode reads a one-line flow collection or scalar at the start of t
// ("[a, b]", "{k: v, n: [1]}", "x") and returns the text after it.
func flowNode(t string, depth int) (any, string, bool) {
	t = strings.TrimLeft(t, " ")
	if t == "" || depth > maxFastDepth {
		return nil, "", false
	}
	switch t[0] {
	case '[':
		out := []any{}
		t = strings.TrimLeft(t[1:], " ")
		if strings.HasPrefix(t, "]") {
			return out, t[1:], true
		}
		for {
			v, rest, ok := flowNode(t, depth+1)
			if !ok {
				return nil, "", false
			}
			out = append(out, v)
			rest = strings.TrimLeft(rest, " ")
			switch {
			case strings.HasPrefix(rest, "]"):
				return out, rest[1:], true
			case strings.HasPrefix(rest, ","):
				t = strings.TrimLeft(rest[1:], " ")
				if t == "" || t[0] == ']' {
					return nil, "", false // trailing comma: go-yaml decides
				}
			default:
				return nil, "", false
			}
		}
	case '{':
		out := map[string]any{}
		t = strings.TrimLeft(t[1:], " ")
		if strings.HasPrefix(t, "}") {
			return out, t[1:], true
		}
		for {
			end := strings.IndexAny(t, ",}")
			if end < 0 {
				return nil, "", false
			}
			key, rest, ok := splitKey(t)
			if !ok || t[0] != '"' && t[0] != '\'' && strings.IndexFunc(strings.TrimRight(t[:len(t)-len(rest)], ": "), notFlowPlain) >= 0 {
				return nil, "", false // a plain key beyond simple words
			}
			if _, dup := out[key]; dup || rest == "" {
				return nil, "", false
			}
			v, after, ok := flowNode(rest, depth+1)
			if !ok {
				return nil, "", false
			}
			out[key] = v
			after = strings.TrimLeft(after, " ")
			switch {
			case strings.HasPrefix(after, "}"):
				return out, after[1:], true
			case strings.HasPrefix(after, ","):
				t = strings.TrimLeft(after[1:], " ")
				if t == "" || t[0] == '}' {
					return nil, "", false
				}
			default:
				return nil, "", false
			}
		}
	case '"':
		return doubleQuoted(t)
	case '\'':
		return singleQuoted(t)
	}
	end := strings.IndexAny(t, ",]}")
	if end < 0 {
		end = len(t)
	}
	raw := strings.TrimRight(t[:end], " ")
	if raw == "" || strings.IndexFunc(raw, notFlowPlain) >= 0 {
		return nil, "", false // anything but simple words: go-yaml decides
	}
	v, ok := plainScalar(raw)
	return v, t[end:], ok
}

// splitKey splits "key: rest" or "key:" into the key (as kubectl reads it)
// and the rest; ok is false when the text is not a simple mapping entry.
func splitKey(t string) (key, rest string, ok bool) {
	// Most keys are a letter followed by letters, digits and "-_./": they
	// are text as written, unless they are one of YAML 1.1's words.
	if c := t[0]; c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
		i := 1
		for i < len(t) && isKeyChar(t[i]) {
			i++
		}
		if i < len(t) && t[i] == ':' && (i == len(t)-1 || t[i+1] == ' ') && i <= 1000 {
			if _, special := yaml11Word(t[:i]); !special {
				if i < len(t)-1 {
					rest = strings.TrimLeft(t[i+2:], " ")
				}
				return t[:i], rest, true
			}
		}
	}
	var raw string
	switch t[0] {
	case '"', '\'':
		var s, tail string
		if len(t) > 1000 {
			return "", "", false
		}
		if t[0] == '"' {
			s, tail, ok = doubleQuoted(t)
		} else {
			s, tail, ok = singleQuoted(t)
		}
		if !ok || !strings.HasPrefix(tail, ":") || (len(tail) > 1 && tail[1] != ' ') {
			return "", "", false
		}
		return s, strings.TrimLeft(tail[1:], " "), true
	}
	if i := strings.Index(t, ": "); i > 1000 {
		return "", "", false // YAML limits implicit keys to 1024 characters
	} else if i >= 0 {
		raw, rest = t[:i], strings.TrimLeft(t[i+2:], " ")
	} else if strings.HasSuffix(t, ":") {
		raw = t[:len(t)-1]
	} else {
		return "", "", false
	}
	raw = strings.TrimRight(raw, " ")
	if raw == "" || len(raw) > 1000 || strings.Contains(raw, " #") || strings.ContainsAny(raw[:1], "-?:,[]{}#&*!|>'\"%@`<.~+") {
		return "", "", false
	}
	// Keys as sigs.k8s.io/yaml writes them: strings as they are, booleans
	// and decimal integers as text; anything else goes to go-yaml.
	if c := raw[0]; c >= '0' && c <= '9' {
		if _, err := strconv.ParseInt(raw, 10, 64); err != nil || (raw[0] == '0' && raw != "0") {
			return "", "", false
		}
		return raw, rest, true
	}
	v, ok := plainScalar(raw)
	if !ok {
		return "", "", false
	}
	switch k := v.(type) {
	case string:
		return k, rest, true
	case bool:
		return strconv.FormatBool(k), rest, true
	}
	return "", "", false
}

func isKeyChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '/'
}

// plainScalar resolves a one-line plain scalar the way go-yaml (YAML 1.1)
// does into an untyped value, then as JSON would carry it.
func plainScalar(s string) (any, bool) {
	if s == "" {
		return nil, true
	}
	if strings.IndexByte(s, ':') >= 0 && (strings.Contains(s, ": ") || s[len(s)-1] == ':') ||
		strings.IndexByte(s, '#') > 0 && strings.Contains(s, " #") {
		return nil, false
	}
	c := s[0]
	switch {
	case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
		if v, special := yaml11Word(s); special {
			return v, true
		}
		return s, true
	case c == '/':
		return s, true
	case c == '-' && len(s) > 1 && (s[1] >= 'a' && s[1] <= 'z' || s[1] >= 'A' && s[1] <= 'Z' ||
		s[1] == '-' && len(s) > 2 && (s[2] >= 'a' && s[2] <= 'z' || s[2] >= 'A' && s[2] <= 'Z')):
		return s, true // a command-line flag: -c, --port
	case c >= '0' && c <= '9' || c == '-':
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && (s == "0" || s[0] != '0') && !strings.HasPrefix(s, "-0") && s != "-" {
			return n, true
		}
		notNumber := notNumeric
		// go-yaml drops every "_" before it reads a number: 0_x1F is 0x1F.
		if p := strings.ReplaceAll(s, "_", ""); len(p) < 2 || p[0] != '0' || !strings.ContainsRune("xXoObB", rune(p[1])) {
			// Without a 0x, 0o or 0b prefix a number has no letter but
			// an exponent's e: a hex digest is text.
			notNumber = notDecimal
		}
		if c != '-' && strings.IndexFunc(s, notNumber) >= 0 {
			// A letter no number has (128Mi, 100m, v1.2): a string.
			// Timestamp-like text is a string in untyped decoding too.
			return s, true
		}
	case strings.ContainsRune("?:,[]{}#&*!|>'\"%@`", rune(c)):
		return nil, false
	}
	// Leading zeros, floats, signs, hex, .inf and the like: ask go-yaml
	// about this one scalar, when it is one token.
	if strings.Contains(s, " ") || strings.HasPrefix(s, "--") || strings.HasPrefix(s, "..") {
		return nil, false
	}
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, false
	}
	switch v.(type) {
	case string:
		return v, true
	case map[any]any, []any, nil:
		return nil, false // not a scalar on its own: go-yaml decides in context
	}
	jv, err := jsonValue(v)
	return jv, err == nil
}

// notFlowPlain reports a rune the fast path does not take in an unquoted
// scalar inside [ ] or { }: flow context has rules of its own.
func notFlowPlain(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./ ", r))
}

// notDecimal reports a rune that no YAML 1.1 decimal int or float contains.
func notDecimal(r rune) bool {
	return !(r >= '0' && r <= '9' || strings.ContainsRune("+-._eE", r))
}

// notNumeric reports a rune that no YAML 1.1 int or float contains.
func notNumeric(r rune) bool {
	return !(r >= '0' && r <= '9' || strings.ContainsRune("+-._eExXoObBaAcCdDfF", r))
}

// isComment reports whether the text after a quoted scalar is only spaces
// and an optional comment.
func isComment(tail string) bool {
	t := strings.TrimLeft(tail, " ")
	return t == "" || (t[0] == '#' && len(t) < len(tail))
}

// stripComment drops a trailing " # comment" and trailing spaces.
func stripComment(s string) string {
	if i := strings.Index(s, " #"); i >= 0 {
		s = s[:i]
	}
	return strings.TrimRight(s, " ")
}

// singleQuoted reads a one-line 'scalar' at the start of t.
func singleQuoted(t string) (val, tail string, ok bool) {
	if i := strings.IndexByte(t[1:], '\'') + 1; i > 0 && (i+1 == len(t) || t[i+1] != '\'') {
		return t[1:i], t[i+1:], true // no '' inside: the text as written
	}
	var b strings.Builder
	for i := 1; i < len(t); i++ {
		if t[i] != '\'' {
			b.WriteByte(t[i])
			continue
		}
		if i+1 < len(t) && t[i+1] == '\'' {
			b.WriteByte('\'')
			i++
			continue
		}
		return b.String(), t[i+1:], true
	}
	return "", "", false
}

// doubleQuoted reads a one-line "scalar" at the start of t, with the
// common escapes; others make the caller give up.
func doubleQuoted(t string) (val, tail string, ok bool) {
	if i := strings.IndexAny(t[1:], "\"\\") + 1; i > 0 && t[i] == '"' {
		return t[1:i], t[i+1:], true // no escapes: the text as written
	}
	var b strings.Builder
	for i := 1; i < len(t); i++ {
		c := t[i]
		switch c {
		case '"':
			return b.String(), t[i+1:], true
		case '\\':
			if i+1 >= len(t) {
				return "", "", false
			}
			i++
			switch t[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '"', '\\':
				b.WriteByte(t[i])
			case '0':
				b.WriteByte(0)
			default:
				return "", "", false
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", "", false
}
