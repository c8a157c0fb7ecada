package apply

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

func obj(t *testing.T, js string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON([]byte(js)); err != nil {
		t.Fatal(err)
	}
	return u
}

func TestEvaluateReadiness(t *testing.T) {
	tests := []struct {
		name  string
		obj   string
		conds []plan.Condition
		ready bool
		fail  string
	}{
		{"deployment rolled out", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","generation":2},"spec":{"replicas":1},
			"status":{"observedGeneration":2,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1,"conditions":[{"type":"Available","status":"True"}]}}`, nil, true, ""},
		{"deployment at an old generation", `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","generation":3},"spec":{"replicas":1},
			"status":{"observedGeneration":2,"replicas":1,"updatedReplicas":1,"readyReplicas":1,"availableReplicas":1}}`, nil, false, ""},
		{"job running is not ready", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"status":{"startTime":"2026-01-01T00:00:00Z","active":1}}`, nil, false, ""},
		{"job complete", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"status":{"conditions":[{"type":"Complete","status":"True"}]}}`, nil, true, ""},
		{"job failed", `{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"status":{"conditions":[{"type":"Failed","status":"True","reason":"BackoffLimitExceeded","message":"Job has reached the specified backoff limit"}]}}`, nil, false, "BackoffLimitExceeded"},
		{"pvc pending", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c"},"status":{"phase":"Pending"}}`, nil, false, ""},
		{"pvc bound", `{"apiVersion":"v1","kind":"PersistentVolumeClaim","metadata":{"name":"c"},"status":{"phase":"Bound"}}`, nil, true, ""},
		{"configmap", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`, nil, true, ""},
		{"custom condition missing", `{"apiVersion":"x.example.com/v1","kind":"Widget","metadata":{"name":"w"}}`,
			[]plan.Condition{{Kind: "Widget", Type: "Synced", Status: "True"}}, false, ""},
		{"custom condition met", `{"apiVersion":"x.example.com/v1","kind":"Widget","metadata":{"name":"w"},"status":{"conditions":[{"type":"Synced","status":"True"}]}}`,
			[]plan.Condition{{Kind: "Widget", Type: "Synced", Status: "True"}}, true, ""},
		{"kindless condition applies to custom resources", `{"apiVersion":"x.example.com/v1","kind":"Widget","metadata":{"name":"w"},"status":{"conditions":[{"type":"Synced","status":"False"}]}}`,
			[]plan.Condition{{Type: "Synced", Status: "True"}}, false, ""},
		{"kindless condition does not apply to built-ins", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}}`,
			[]plan.Condition{{Type: "Synced", Status: "True"}}, true, ""},
		{"being deleted", `{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c","deletionTimestamp":"2026-01-01T00:00:00Z"}}`, nil, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := evaluate(obj(t, tt.obj), tt.conds)
			if r.ready != tt.ready {
				t.Errorf("ready %v, want %v (%s)", r.ready, tt.ready, r.message)
			}
			switch {
			case tt.fail == "" && r.failed != nil:
				t.Errorf("failed: %v", r.failed)
			case tt.fail != "" && (r.failed == nil || !strings.Contains(r.failed.Error(), tt.fail)):
				t.Errorf("failure %v, want one naming %q", r.failed, tt.fail)
			}
		})
	}
}

func TestConflictErrorNamesFieldsAndManagers(t *testing.T) {
	err := &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: 409, Reason: metav1.StatusReasonConflict,
		Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{
			{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "kubectl-edit" using apps/v1`, Field: ".spec.replicas"},
			{Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "helm" using apps/v1`, Field: ".spec.template.spec.containers[name=\"web\"].image"},
		}},
	}}
	ref := ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "ns", Name: "web"}
	ce := conflictError(ref, fmt.Errorf("wrapped: %w", err))
	if ce == nil {
		t.Fatal("not recognised as a conflict")
	}
	want := `Deployment ns/web: fields changed by another manager: .spec.replicas (owned by "kubectl-edit"), .spec.template.spec.containers[name="web"].image (owned by "helm"); force the apply to take them over, or drop them from the manifest`
	if ce.Error() != want {
		t.Errorf("message\n%s\nwant\n%s", ce.Error(), want)
	}
	if conflictError(ref, errors.New("other")) != nil {
		t.Error("a plain error taken for a conflict")
	}
}

func TestImmutableFields(t *testing.T) {
	err := apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "web", field.ErrorList{
		field.Invalid(field.NewPath("spec", "selector"), "x", "field is immutable"),
	})
	fields, ok := immutableFields(err)
	if !ok || len(fields) != 1 || fields[0] != "spec.selector" {
		t.Errorf("immutableFields = %v, %v", fields, ok)
	}
	other := apierrors.NewInvalid(schema.GroupKind{Kind: "ConfigMap"}, "c", field.ErrorList{field.Required(field.NewPath("data"), "")})
	if _, ok := immutableFields(other); ok {
		t.Error("a validation error taken for an immutable field")
	}
}

func TestInventoryUnionKeepsEverything(t *testing.T) {
	ref := func(kind, name string) ObjectRef {
		return ObjectRef{Version: "v1", Kind: kind, Namespace: "ns", Name: name}
	}
	prev := inventory{Nodes: []inventoryNode{
		{Name: "a", Objects: []ObjectRef{ref("ConfigMap", "a"), ref("Service", "a")}},
		{Name: "gone", Objects: []ObjectRef{ref("ConfigMap", "gone")}},
	}}
	planned := inventory{Nodes: []inventoryNode{
		{Name: "a", Objects: []ObjectRef{ref("ConfigMap", "a")}},
		{Name: "new", Objects: []ObjectRef{ref("ConfigMap", "new")}},
	}}
	u := prev.union(planned)
	data, _ := json.Marshal(u)
	want := `{"nodes":[{"name":"a","objects":[{"group":"","version":"v1","kind":"ConfigMap","namespace":"ns","name":"a"},{"group":"","version":"v1","kind":"Service","namespace":"ns","name":"a"}]},{"name":"new","objects":[{"group":"","version":"v1","kind":"ConfigMap","namespace":"ns","name":"new"}]},{"name":"gone","objects":[{"group":"","version":"v1","kind":"ConfigMap","namespace":"ns","name":"gone"}]}]}`
	if string(data) != want {
		t.Errorf("union\n%s\nwant\n%s", data, want)
	}
}

func TestJSONLinesFormat(t *testing.T) {
	var buf bytes.Buffer
	jl := NewJSONLines(&buf)
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("X", 3600))
	jl.Event(Event{Time: at, Node: "api", Group: "internal", Phase: PhaseApply, Status: StatusWaiting})
	jl.Event(Event{Time: at, Node: "api", Group: "internal", Phase: PhaseWait, Status: StatusReady, Objects: []string{"Deployment ns/api"}, Duration: 1250 * time.Millisecond})
	want := `{"time":"2026-01-02T02:04:05Z","node":"api","group":"internal","phase":"wait","status":"ready","objects":["Deployment ns/api"],"duration":1.25}` + "\n"
	if buf.String() != want {
		t.Errorf("events\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestDescribePod(t *testing.T) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "migrate-x"}, Status: corev1.PodStatus{
		Phase: corev1.PodFailed,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "migrate", State: corev1.ContainerState{
			Terminated: &corev1.ContainerStateTerminated{ExitCode: 3, Reason: "Error", Message: "relation users exists\n"},
		}}},
	}}
	want := "migrate-x: Failed; container migrate exited 3 (Error): relation users exists"
	if got := describePod(p); got != want {
		t.Errorf("describePod = %q, want %q", got, want)
	}
	jf := &JobFailedError{Object: ObjectRef{Group: "batch", Kind: "Job", Namespace: "ns", Name: "migrate"}, Reason: "BackoffLimitExceeded", Pod: want, LogErr: "the server could not find the requested resource"}
	if s := jf.Error(); !strings.Contains(s, "pod migrate-x") || !strings.Contains(s, "log unavailable") {
		t.Errorf("job error %q", s)
	}
}

func TestGenerate(t *testing.T) {
	for _, cs := range []string{"", "alphanumeric", "hex", "base64"} {
		v, err := generate(24, cs)
		if err != nil || len(v) != 24 {
			t.Errorf("generate(24, %q) = %d chars, %v", cs, len(v), err)
		}
	}
	a, _ := generate(32, "")
	b, _ := generate(32, "")
	if a == b {
		t.Error("two generated values are equal")
	}
	if _, err := generate(8, "emoji"); err == nil {
		t.Error("unknown charset accepted")
	}
}

func TestServedKinds(t *testing.T) {
	crd := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiextensions.k8s.io/v1",
		"kind":       "CustomResourceDefinition",
		"spec": map[string]any{
			"group": "example.test",
			"names": map[string]any{"kind": "Widget"},
			"versions": []any{
				map[string]any{"name": "v1", "served": true},
				map[string]any{"name": "v1beta1", "served": false},
				map[string]any{"name": "v2", "served": true},
			},
		},
	}}
	got := servedKinds(crd)
	want := []schema.GroupVersionKind{{Group: "example.test", Version: "v1", Kind: "Widget"}, {Group: "example.test", Version: "v2", Kind: "Widget"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("servedKinds = %v, want %v", got, want)
	}
}

// TestPodCannotRun: the pod states that waiting will not cure, as a real
// kubelet reports them (the test cluster's pods only ever fail outright).
func TestPodCannotRun(t *testing.T) {
	crash := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "api-1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
		ContainerStatuses: []corev1.ContainerStatus{{Name: "main",
			State:                corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off 40s restarting failed container"}},
			LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error", Message: "no config"}},
		}}}}
	if got := podCannotRun(crash); got != "CrashLoopBackOff" {
		t.Errorf("crash loop: %q", got)
	}
	want := "api-1: Running; container main waiting: CrashLoopBackOff: back-off 40s restarting failed container; container main exited 2 (Error): no config"
	if got := describePod(crash); got != want {
		t.Errorf("describePod:\n%s\nwant\n%s", got, want)
	}
	pull := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{{Name: "wait",
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}}}}
	if got := podCannotRun(pull); got != "ImagePullBackOff" {
		t.Errorf("image pull back-off in an init container: %q", got)
	}
	exited := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 4}}}}}}
	if got := podCannotRun(exited); got != "failed" {
		t.Errorf("a program that exited 4: %q", got)
	}
	for name, p := range map[string]*corev1.Pod{
		"starting":   {Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}},
		"first pull": {Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}}},
		"going away": {ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &metav1.Time{}}, Status: corev1.PodStatus{Phase: corev1.PodFailed}},
		"evicted": {Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", ContainerStatuses: []corev1.ContainerStatus{{
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137}}}}}},
		"running": {Status: corev1.PodStatus{Phase: corev1.PodRunning}},
	} {
		if got := podCannotRun(p); got != "" {
			t.Errorf("%s: %q, want it may still run", name, got)
		}
	}
}

func TestSubset(t *testing.T) {
	spec := map[string]any{"failurePolicy": "Fail", "validations": []any{map[string]any{"expression": "true"}}, "n": int64(1)}
	for _, tt := range []struct {
		name string
		got  any
		want bool
	}{
		{"the same", map[string]any{"failurePolicy": "Fail", "validations": []any{map[string]any{"expression": "true"}}, "n": int64(1)}, true},
		{"with defaults added", map[string]any{"failurePolicy": "Fail", "matchPolicy": "Equivalent", "validations": []any{map[string]any{"expression": "true", "reason": "Invalid"}}, "n": int64(1)}, true},
		{"a value changed by hand", map[string]any{"failurePolicy": "Ignore", "validations": []any{map[string]any{"expression": "true"}}, "n": int64(1)}, false},
		{"a list element added", map[string]any{"failurePolicy": "Fail", "validations": []any{map[string]any{"expression": "true"}, map[string]any{"expression": "false"}}, "n": int64(1)}, false},
		{"a field missing", map[string]any{"failurePolicy": "Fail", "n": int64(1)}, false},
		{"nothing", nil, false},
	} {
		if got := subset(spec, tt.got); got != tt.want {
			t.Errorf("%s: subset = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !subset(map[string]any{}, nil) || !subset([]any{}, nil) {
		t.Error("an empty map or list is a subset of nothing")
	}
}
