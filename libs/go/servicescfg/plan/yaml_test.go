package plan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8syaml "sigs.k8s.io/yaml"
)

// kubectlDecode is how kubectl reads a manifest: YAML to JSON, JSON to an
// unstructured object.
func kubectlDecode(doc []byte) (map[string]any, error) {
	js, err := k8syaml.YAMLToJSON(doc)
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

var trickyDocs = []string{
	"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata:\n  on: yes\n  off: no\n  octal: 0755\n  float: 1.5\n  whole: 2.0\n  big: 9223372036854775807\n  neg: -3\n  empty:\n  str: \"0755\"\n",
	"kind: X\napiVersion: v1\nmetadata:\n  name: b\n  labels: {1: one, true: t, 1.5: f}\nlist: [1, \"2\", 3.25, null, [a, {b: c}]]\n",
	"kind: X\napiVersion: v1\nmetadata: {name: c}\nanchors:\n  a: &x {k: v}\n  b: *x\n  c: {<<: *x, j: w}\n",
	"kind: X\napiVersion: v1\nmetadata: {name: d}\nblock: |\n  line one\n  line two\nfolded: >\n  a\n  b\n",
	"kind: X\napiVersion: v1\nmetadata: {name: e}\nts: 2001-12-14t21:59:43.10-05:00\ndate: 2002-12-14\n",
}

func TestDecodeMatchesKubectl(t *testing.T) {
	docs := append([]string(nil), trickyDocs...)
	goldens, _ := filepath.Glob("testdata/*.manifests.yaml")
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range splitDocuments(data) {
			docs = append(docs, string(d.data))
		}
	}
	if len(docs) < 100 {
		t.Fatalf("only %d documents to compare; goldens missing?", len(docs))
	}
	for i, doc := range docs {
		if len(stripComments([]byte(doc))) == 0 {
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
