package fastyaml

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	k8syaml "sigs.k8s.io/yaml"
)

// kubectlDecode is how kubectl reads a manifest: YAML to JSON, JSON to an
// unstructured object. A key repeated as written is refused besides, as
// strict field validation (kubectl's default) refuses it: see
// duplicateKey.
func kubectlDecode(doc []byte) (map[string]any, error) {
	js, err := k8syaml.YAMLToJSON(doc)
	if err == nil {
		err = duplicateKey(doc)
	}
	if err != nil {
		return nil, err
	}
	var probe any
	if err := json.Unmarshal(js, &probe); err != nil {
		return nil, err
	}
	if _, ok := probe.(map[string]any); !ok {
		return nil, errNotMapping
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, err
	}
	return u.Object, nil
}

var errNotMapping = os.ErrInvalid

// kubectlValue is kubectl's reading of any YAML mapping, object or not:
// YAML to JSON, then JSON numbers as unstructured objects hold them.
func kubectlValue(doc []byte) (map[string]any, error) {
	js, err := k8syaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := utiljson.Unmarshal(js, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errNotMapping
	}
	return m, nil
}

var trickyDocs = []string{
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: yes\n  off: no\n  octal: 0755\n  float: 1.5\n  whole: 2.0\n  big: 9223372036854775807\n  neg: -3\n  empty:\n  str: \"0755\"\n",
	"kind: X\napiVersion: v1\nmetadata:\n  name: b\n  labels: {1: one, true: t, 1.5: f}\nlist: [1, \"2\", 3.25, null, [a, {b: c}]]\n",
	"kind: X\napiVersion: v1\nmetadata: {name: c}\nanchors:\n  a: &x {k: v}\n  b: *x\n  c: {<<: *x, j: w}\n",
	"kind: X\napiVersion: v1\nmetadata: {name: d}\nblock: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
	"kind: X\napiVersion: v1\nmetadata: {name: e}\nts: 2001-12-14t21:59:43.10-05:00\ndate: 2002-12-14\n",
	// The block subset fastDecode reads, and its edges.
	"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: words\ndata:\n  a: y\n  b: Y\n  c: yes\n  d: n\n  e: NO\n  f: on\n  g: Off\n  h: true\n  i: FALSE\n  j: null\n  k: Null\n  l: ~\n  m: yEs\n  o: nULL\n  p: True\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: n}\nv:\n  a: 0\n  b: -0\n  c: 007\n  d: 08\n  e: 0x1F\n  f: 1_000\n  g: 1e3\n  h: -1.5\n  i: .5\n  j: .inf\n  k: -.Inf\n  l: 12:30\n  m: 1:20:30\n  n: 128Mi\n  o: 100m\n  p: 9223372036854775808\n  q: -9223372036854775808\n  r: +5\n  s: 0b101\n  t: 0o17\n  u: 1.0\n  w: 3.14.15\n  x: 2001-12-14\n  z: -foo\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: hex}\nv:\n  a: 3a7bd3e2360a3d29eea436fcfb7e44c735d117c42d1c1835420b6b9942dd4f1b\n  b: 0x1f\n  c: 0X1F\n  d: 0xfg\n  e: 0b11\n  f: 0o7\n  g: 1e5\n  h: 1E+5\n  i: 12ab\n  j: 1_0\n  k: 0_7\n  l: 1.5e-3\n  m: 9f\n  n: 1d\n  o: 0B2\n  p: 1x2\n  q: 00x1\n  r: 1o\n  s: 0_x1F\n  t: 0_b101\n  u: 0_o17\n  w: 0__x10\n  x: 0_X1f\n  y: 0_B1\n  z: 0_O7\n  aa: 0_b1_0\n  ab: 0_x1_F\n  ac: 1_a\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: k}\nkeys:\n  8080: a\n  yes: b\n  off: c\n  \"quoted key\": d\n  'single': e\n  app.kubernetes.io/name: f\n  a#b: g\n",
	"apiVersion: v1\nkind: X\nmetadata:\n  name: q\nv:\n  a: \"x\\ny\\t\\\"z\\\\\" # c\n  b: 'it''s'\n  c: \"\"\n  d: ''\n  e: {}\n  f: []\n  g: [] # c\n  h: \"a # not a comment\"\n  i: plain # comment\n  j: url#frag\n  k: \"\\/\"\n  l: \"\\u00e9\"\n",
	"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: seq\nspec:\n  template:\n    spec:\n      containers:\n      - name: a\n        args:\n        - one\n        - \"2\"\n        -\n          nested: map\n        ports:\n          - containerPort: 80\n            protocol: TCP\n      - name: b\n        env: []\n      volumes:\n      -   name: x\n          emptyDir: {}\n",
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lit}\ndata:\n  a: |\n    line one\n\n      indented\n    last\n\n\n  b: |-\n    stripped\n  c: |\n  d: |+\n    kept\n\n  e: >\n    folded\n    text\n  f: | # comment\n    x\n# a comment line\n  g: x\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: bad}\na: b: c\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: dup}\na: 1\na: 2\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: cont}\na: one\n  two\nb: \"x\n  y\"\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: odd}\n- a\n",
	"  apiVersion: v1\n  kind: X\n  metadata: {name: indented}\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: m}\nkey: -\nother: - a\n",
	// A merge may be overridden; a key written twice may not.
	"apiVersion: v1\nkind: X\nmetadata: {name: mo}\nl: &l {a: \"1\", x: \"1\"}\nannotations: {<<: *l, x: \"2\"}\nblock:\n  <<: *l\n  x: \"3\"\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: md}\nl: &l {a: \"1\"}\nm:\n  <<: *l\n  b: 1\n  b: 2\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: mk}\nm: {1: a, \"1\": b}\n",
	// Duplicates and oddities inside values an identity-only read skips.
	"apiVersion: v1\nkind: X\nmetadata: {name: s}\nspec:\n  a: 1\n  b:\n    c: 2\n    c: 3\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: s2}\nspec:\n  - a: 1\n    a: 2\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: s3}\nspec: 1\nspec: 2\n",
	"apiVersion: v1\nkind: X\nmetadata: {name: s4}\nspec:\n  x:\n    a: 1\n  y:\n    a: 1\n  z: [a, {b: c}]\n  t: |\n    text\n  q: \"it\\\"s\"\n",
	"apiVersion: v1\nkind: X\nmetadata:\n  name: s5\n  labels:\n    a: b\n    a: c\n",
}

func TestDecodeMatchesKubectl(t *testing.T) {
	docs := append([]string(nil), trickyDocs...)
	docs = append(docs, goldenDocuments(t)...)
	if len(docs) < 100 {
		t.Fatalf("only %d documents to compare; goldens missing?", len(docs))
	}
	// The real stacks' manifests are what the fast path is for: it must
	// take nearly all of them (the rest falls back to go-yaml).
	fast, total := 0, 0
	for _, doc := range docs[len(trickyDocs):] {
		if !hasContent(doc) {
			continue
		}
		total++
		if _, ok := fastDecode([]byte(doc), false); ok {
			fast++
		}
	}
	for _, doc := range docs {
		full, ok := fastDecode([]byte(doc), false)
		checkIdentityDecode(t, doc, full, ok)
	}
	if fast*10 < total*9 {
		t.Errorf("fastDecode took %d of %d golden documents, want at least 90%%", fast, total)
	}
	for i, doc := range docs {
		if !hasContent(doc) {
			continue
		}
		want, werr := kubectlDecode([]byte(doc))
		got, gerr := decodeObject([]byte(doc))
		if (werr == nil) != (gerr == nil) {
			t.Errorf("doc %d: kubectl error %v, ours %v\n%s", i, werr, gerr, doc)
			continue
		}
		if werr == nil && !reflect.DeepEqual(want, got) {
			t.Errorf("doc %d decodes differently:\nkubectl: %#v\nours:    %#v", i, want, got)
		}
	}
}

func FuzzDecodeMatchesKubectl(f *testing.F) {
	for _, d := range trickyDocs {
		f.Add(d)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got, gerr := decodeObject([]byte(doc))
		want, werr := kubectlDecode([]byte(doc))
		if gerr == nil && werr == nil && !reflect.DeepEqual(want, got) {
			t.Fatalf("decodes differently:\nkubectl: %#v\nours:    %#v", want, got)
		}
		if gerr == nil && werr != nil {
			if _, isKind := got["kind"].(string); isKind && got["kind"] != "" {
				t.Fatalf("we accept what kubectl rejects (%v): %q", werr, doc)
			}
		}
	})
}

// FuzzFastDecode: whatever the fast path accepts, kubectl's decoding
// accepts too, with the same value.
func FuzzFastDecode(f *testing.F) {
	for _, d := range trickyDocs {
		f.Add(d)
	}
	goldens, _ := filepath.Glob(goldenManifests)
	for _, g := range goldens[:min(len(goldens), 4)] {
		data, _ := os.ReadFile(g)
		for _, d := range splitDocuments(string(data)) {
			f.Add(d)
		}
	}
	f.Fuzz(func(t *testing.T, doc string) {
		got, ok := fastDecode([]byte(doc), false)
		checkIdentityDecode(t, doc, got, ok)
		if !ok {
			return
		}
		want, err := kubectlValue([]byte(doc))
		if err != nil {
			t.Fatalf("fast path accepts what kubectl rejects (%v):\n%q", err, doc)
		}
		if !reflect.DeepEqual(want, got) {
			t.Fatalf("decodes differently:\nkubectl: %#v\nfast:    %#v\n%q", want, got, doc)
		}
	})
}

// checkIdentityDecode: the identity-only fast path accepts exactly what the
// full one does (full and ok are its result for doc), and keeps the same
// apiVersion, kind and metadata.
func checkIdentityDecode(t *testing.T, doc string, full map[string]any, ok bool) {
	t.Helper()
	id, idOK := fastDecode([]byte(doc), true)
	if idOK != ok {
		t.Fatalf("identity-only fast path ok=%v, full ok=%v:\n%q", idOK, ok, doc)
	}
	if !ok {
		return
	}
	for k, v := range full {
		want := v
		if !identityKey(k) {
			want = nil
		}
		if got, has := id[k]; !has || !reflect.DeepEqual(got, want) {
			t.Fatalf("identity-only %s = %#v, want %#v:\n%q", k, got, want, doc)
		}
	}
	if len(id) != len(full) {
		t.Fatalf("identity-only keys %d, full %d:\n%q", len(id), len(full), doc)
	}
}

// TestFastDecodeDeepNesting: deep nesting is left to go-yaml, not recursed
// into without bound.
func TestFastDecodeDeepNesting(t *testing.T) {
	flow := "kind: X\napiVersion: v1\nmetadata: {name: deep}\nv: " + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "\n"
	if _, ok := fastDecode([]byte(flow), false); ok {
		t.Error("the fast path took 100000 nested flow lists")
	}
	var b strings.Builder
	b.WriteString("kind: X\napiVersion: v1\nmetadata: {name: deep}\n")
	for i := range 200 {
		b.WriteString(strings.Repeat(" ", i) + "k:\n")
	}
	if _, ok := fastDecode([]byte(b.String()), false); ok {
		t.Error("the fast path took 200 nested mappings")
	}
	if _, err := decodeObject([]byte(b.String())); err != nil {
		t.Errorf("go-yaml rejects 200 nested mappings: %v", err)
	}
}

// TestMergeOverridesAreNotDuplicates: a key that overrides a merge is
// accepted with its value; a key written twice is refused at its line.
func TestMergeOverridesAreNotDuplicates(t *testing.T) {
	got, err := decodeObject([]byte("apiVersion: v1\nkind: X\nmetadata: {name: mo}\nl: &l {a: \"1\", x: \"1\"}\nannotations: {<<: *l, x: \"2\"}\n"))
	if err != nil {
		t.Fatalf("merge override refused: %v", err)
	}
	if want := map[string]any{"a": "1", "x": "2"}; !reflect.DeepEqual(got["annotations"], want) {
		t.Errorf("annotations %v, want %v", got["annotations"], want)
	}
	_, err = decodeObject([]byte("apiVersion: v1\nkind: X\nmetadata:\n  name: a\n  name: b\n"))
	if err == nil || err.Error() != `yaml: line 5: key "name" already set in map` {
		t.Errorf("key written twice: %v", err)
	}
}

// goldenManifests are the rendered manifests of the plan's golden files:
// the real stacks' manifests, which the fast path is for.
const goldenManifests = "../../plan/testdata/*.manifests.yaml"

// goldenDocuments returns the documents of the golden manifests.
func goldenDocuments(t *testing.T) []string {
	t.Helper()
	goldens, _ := filepath.Glob(goldenManifests)
	var docs []string
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, splitDocuments(string(data))...)
	}
	return docs
}

// splitDocuments splits a YAML stream at "---" lines (the plan splits
// rendered output the same way, keeping line numbers).
func splitDocuments(stream string) []string {
	var docs []string
	var cur strings.Builder
	for line := range strings.SplitAfterSeq(stream, "\n") {
		if t := strings.TrimRight(line, " \t\r\n"); t == "---" || strings.HasPrefix(t, "--- ") {
			docs = append(docs, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteString(line)
	}
	return append(docs, cur.String())
}

// hasContent reports whether a document has a line that is neither blank
// nor a comment.
func hasContent(doc string) bool {
	for line := range strings.SplitSeq(doc, "\n") {
		if t := strings.TrimSpace(line); t != "" && t[0] != '#' {
			return true
		}
	}
	return false
}
