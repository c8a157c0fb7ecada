package apply

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pmezard/go-difflib/difflib"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// serverOwnedMetadata are the metadata fields the API server writes: they
// change on every write and say nothing about what an apply changes.
var serverOwnedMetadata = []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp", "selfLink"}

// lastApplied is client-side kubectl apply's copy of the object: noise in a
// diff, and it holds a Secret's values.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// comparable is a copy of u without what the server owns: the fields
// above and status.
func comparable(u *unstructured.Unstructured) *unstructured.Unstructured {
	c := u.DeepCopy()
	for _, f := range serverOwnedMetadata {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	delete(c.Object, "status")
	if ann := c.GetAnnotations(); ann != nil {
		delete(ann, lastApplied)
		if len(ann) == 0 {
			unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
		} else {
			c.SetAnnotations(ann)
		}
	}
	return c
}

// Masks that stand for a Secret's values in a diff.
const (
	maskSame   = "***"
	maskBefore = "*** (before)"
	maskAfter  = "*** (after)"
)

func isSecret(u *unstructured.Unstructured) bool {
	gvk := u.GroupVersionKind()
	return gvk.Group == "" && gvk.Kind == "Secret"
}

// maskSecret replaces the values of two versions of a Secret (before may
// be nil) with masks that still show which changed, and returns the keys
// whose values are set, changed or removed, sorted. Objects of other kinds
// are left alone.
func maskSecret(before, after *unstructured.Unstructured) []string {
	if !isSecret(after) {
		return nil
	}
	changed := map[string]bool{}
	for _, field := range []string{"data", "stringData"} {
		b, a := secretValues(before, field), secretValues(after, field)
		for _, k := range slices.Sorted(maps.Keys(mergeKeys(b, a))) {
			bv, inB := b[k]
			av, inA := a[k]
			switch {
			case inB && inA && bv == av:
				b[k], a[k] = maskSame, maskSame
			case inB && inA:
				b[k], a[k] = maskBefore, maskAfter
				changed[k] = true
			case inB:
				b[k] = maskSame
				changed[k] = true
			default:
				a[k] = maskSame
				changed[k] = true
			}
		}
		setSecretValues(before, field, b)
		setSecretValues(after, field, a)
	}
	if len(changed) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(changed))
}

func secretValues(u *unstructured.Unstructured, field string) map[string]any {
	if u == nil {
		return map[string]any{}
	}
	m, ok := u.Object[field].(map[string]any)
	if !ok {
		return map[string]any{}
	}
	return maps.Clone(m)
}

func setSecretValues(u *unstructured.Unstructured, field string, m map[string]any) {
	if u == nil || len(m) == 0 {
		return
	}
	u.Object[field] = m
}

func mergeKeys(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// secretKeys names the keys of a Secret whose values an apply of u would
// set, change or remove (every key when live is nil); nil for other kinds.
// It masks copies, never u.
func secretKeys(live, u *unstructured.Unstructured) []string {
	if u == nil || !isSecret(u) {
		return nil
	}
	var before *unstructured.Unstructured
	if live != nil {
		before = comparable(live)
	}
	return maskSecret(before, u.DeepCopy())
}

// unifiedDiff is the unified diff of two objects as YAML (keys sorted), ""
// when they are the same.
func unifiedDiff(before, after *unstructured.Unstructured) (string, error) {
	a, err := yaml.Marshal(before.Object)
	if err != nil {
		return "", fmt.Errorf("%s: %w", refOf(before), err)
	}
	b, err := yaml.Marshal(after.Object)
	if err != nil {
		return "", fmt.Errorf("%s: %w", refOf(after), err)
	}
	if string(a) == string(b) {
		return "", nil
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(string(a)), B: difflib.SplitLines(string(b)),
		FromFile: "live", ToFile: "applied", Context: 3,
	})
}
