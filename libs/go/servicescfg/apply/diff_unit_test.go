package apply

import (
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func secretObj(data map[string]any) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "s"}}}
	if data != nil {
		u.Object["data"] = data
	}
	return u
}

// TestMaskSecret: values never survive masking; keys that change are
// named, and the masks still show which changed.
func TestMaskSecret(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[string]any
		keys          []string
		wantB, wantA  map[string]any
	}{
		{"same", map[string]any{"k": "djE="}, map[string]any{"k": "djE="}, nil, map[string]any{"k": maskSame}, map[string]any{"k": maskSame}},
		{"changed", map[string]any{"k": "djE="}, map[string]any{"k": "djI="}, []string{"k"}, map[string]any{"k": maskBefore}, map[string]any{"k": maskAfter}},
		{"added and removed", map[string]any{"old": "djE="}, map[string]any{"new": "djI="}, []string{"new", "old"}, map[string]any{"old": maskSame}, map[string]any{"new": maskSame}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, a := secretObj(tt.before), secretObj(tt.after)
			keys := maskSecret(b, a)
			if !slices.Equal(keys, tt.keys) {
				t.Errorf("keys %v, want %v", keys, tt.keys)
			}
			for _, c := range []struct {
				u    *unstructured.Unstructured
				want map[string]any
			}{{b, tt.wantB}, {a, tt.wantA}} {
				got, _, _ := unstructured.NestedMap(c.u.Object, "data")
				for k, v := range c.want {
					if got[k] != v {
						t.Errorf("data[%s] = %v, want %v", k, got[k], v)
					}
				}
			}
		})
	}
	if keys := maskSecret(nil, secretObj(map[string]any{"a": "eA==", "b": "eQ=="})); !slices.Equal(keys, []string{"a", "b"}) {
		t.Errorf("a new Secret names every key, got %v", keys)
	}
	cm := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap", "data": map[string]any{"k": "v"}}}
	if keys := maskSecret(nil, cm); keys != nil || cm.Object["data"].(map[string]any)["k"] != "v" {
		t.Errorf("a ConfigMap is not masked")
	}
}

// TestComparableDropsServerFields: what the server owns, and client-side
// apply's copy of the object, are not compared.
func TestComparableDropsServerFields(t *testing.T) {
	u := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "v1", "kind": "Secret",
		"metadata": map[string]any{"name": "s", "resourceVersion": "7", "generation": int64(2), "uid": "u", "creationTimestamp": "t",
			"managedFields": []any{map[string]any{"manager": "m"}}, "annotations": map[string]any{lastApplied: `{"data":{"k":"secret"}}`}},
		"status": map[string]any{"phase": "x"},
	}}
	c := comparable(u)
	text, err := unifiedDiff(c, c)
	if err != nil || text != "" {
		t.Fatalf("an object differs from itself: %q %v", text, err)
	}
	meta := c.Object["metadata"].(map[string]any)
	for _, k := range []string{"resourceVersion", "generation", "uid", "creationTimestamp", "managedFields", "annotations"} {
		if _, ok := meta[k]; ok {
			t.Errorf("metadata.%s kept", k)
		}
	}
	if _, ok := c.Object["status"]; ok {
		t.Errorf("status kept")
	}
	if _, ok := u.Object["status"]; !ok {
		t.Errorf("comparable changed its input")
	}
	after := c.DeepCopy()
	after.SetLabels(map[string]string{"a": "b"})
	text, _ = unifiedDiff(c, after)
	if !strings.Contains(text, "+    a: b") || !strings.HasPrefix(text, "--- live\n+++ applied\n") {
		t.Errorf("diff:\n%s", text)
	}
}
