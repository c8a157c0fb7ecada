package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// TestLibraryErrorsWordedWithFlags: the library says what to do in its own
// terms; the CLI says it with its flags, as it did before the library
// stopped naming them.
func TestLibraryErrorsWordedWithFlags(t *testing.T) {
	ref := apply.ObjectRef{Group: "apps", Version: "v1", Kind: "Deployment", Namespace: "ns", Name: "web"}
	conflict := &apply.ConflictError{Object: ref, Conflicts: []apply.FieldConflict{{Field: ".spec.replicas", Manager: "kubectl-edit"}}}
	immutable := &apply.ImmutableError{Object: ref, Fields: []string{"spec.selector"}}
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"conflict", conflict, `Deployment ns/web: fields changed by another manager: .spec.replicas (owned by "kubectl-edit"); re-run with --force-conflicts to take them over, or drop them from the manifest`},
		{"immutable, wrapped", fmt.Errorf("namespace: %w", immutable), `namespace: Deployment ns/web: cannot change spec.selector of an existing object; re-run with --recreate to delete and re-create it (its data and pods go with it)`},
		{"immutable, no fields", &apply.ImmutableError{Object: ref}, `Deployment ns/web: cannot change an immutable field of an existing object; re-run with --recreate to delete and re-create it (its data and pods go with it)`},
		{"locked", &apply.LockedError{Namespace: "ns", Holder: "ops@host pid 7", Age: 3 * time.Second, Expires: 30 * time.Second},
			`namespace ns is being reconciled by ops@host pid 7 (for 3s; the lease is taken over if not renewed within 30s): wait for it to finish or pass --lock-wait`},
		{"other", errors.New("boom"), "boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if strings.Contains(tt.err.Error(), "--") {
				t.Errorf("the library's message names a flag: %v", tt.err)
			}
			err := wordFlags(tt.err)
			if err.Error() != tt.want {
				t.Errorf("worded\n%s\nwant\n%s", err, tt.want)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the worded error does not wrap the library's")
			}
		})
	}
	// The summary of a reconcile words each failure the same way.
	res := &apply.Result{Namespace: "ns", Nodes: []apply.NodeResult{{Name: "web", Status: apply.StatusFailed, Err: conflict}}}
	var out bytes.Buffer
	writeSummary(&out, res, &apply.NodesError{Failed: res.Nodes})
	if !strings.Contains(out.String(), "FAILED web: "+tests[0].want+"\n") {
		t.Errorf("summary:\n%s", out.String())
	}
}

func TestTargetUsage(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&plan.TargetError{Err: plan.ErrUnknownEnvironment, Env: "x", Declared: []string{"dev", "prod"}}, `unknown environment "x" (declared: dev, prod)`},
		{&plan.TargetError{Err: plan.ErrSlotRequired, Env: "ai-slot"}, `slot required: environment "ai-slot" is a slot environment: pass --slot`},
		{&plan.TargetError{Err: plan.ErrSlotNotAllowed, Env: "dev", Slot: "1"}, `slot not allowed: environment "dev" has no slots: drop --slot`},
		{&plan.TargetError{Err: plan.ErrInvalidSlot, Env: "ai-slot", Slot: "A_1"}, `invalid slot "A_1": a slot is a DNS label (lowercase letters, digits, '-')`},
	}
	for _, tt := range tests {
		err := targetUsage(fmt.Errorf("plan: %w", tt.err))
		if err == nil || err.Error() != tt.want || ExitCode(err) != ExitUsage {
			t.Errorf("targetUsage(%v) = %v (exit %d), want %q (exit %d)", tt.err, err, ExitCode(err), tt.want, ExitUsage)
		}
		if strings.Contains(tt.err.Error(), "--") {
			t.Errorf("the library's message names a flag: %v", tt.err)
		}
	}
	if targetUsage(errors.New("other")) != nil {
		t.Errorf("targetUsage took another error for a target's")
	}
}
