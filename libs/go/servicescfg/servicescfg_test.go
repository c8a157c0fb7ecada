package servicescfg_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// The platform's own stack and the example project.
var stacks = []string{"../../../services.yaml", "../../../examples/new-project/services.yaml"}

func TestValidateEveryEnvironment(t *testing.T) {
	for _, path := range stacks {
		t.Run(path, func(t *testing.T) {
			prj, err := servicescfg.Open(path, servicescfg.Options{})
			if err != nil {
				t.Fatal(err)
			}
			report, err := prj.Validate(context.Background())
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if got, want := len(report.Environments), len(prj.Stack().Spec.Environments); got != want {
				t.Errorf("%d environments reported, want %d", got, want)
			}
			for _, env := range report.Environments {
				p, err := prj.Plan(context.Background(), servicescfg.Target{Env: env.Env, Slot: env.Slot}, servicescfg.IdentityOnly())
				if err != nil {
					t.Fatalf("Plan(%s): %v", env.Env, err)
				}
				if p.Namespace != env.Namespace || len(p.Steps) != env.Nodes {
					t.Errorf("%s: report says %s with %d nodes, the plan %s with %d", env.Env, env.Namespace, env.Nodes, p.Namespace, len(p.Steps))
				}
			}
		})
	}
}

func TestTargetErrors(t *testing.T) {
	prj, err := servicescfg.Open(stacks[0], servicescfg.Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		target servicescfg.Target
		want   error
	}{
		{servicescfg.Target{Env: "nope"}, plan.ErrUnknownEnvironment},
		{servicescfg.Target{Env: "ai-slot"}, plan.ErrSlotRequired},
		{servicescfg.Target{Env: "dev", Slot: "1"}, plan.ErrSlotNotAllowed},
		{servicescfg.Target{Env: "ai-slot", Slot: "Bad_Slot"}, plan.ErrInvalidSlot},
	}
	for _, tt := range tests {
		_, err := prj.Plan(context.Background(), tt.target)
		var te *plan.TargetError
		if !errors.As(err, &te) || !errors.Is(err, tt.want) {
			t.Errorf("Plan(%+v) = %v, want a *plan.TargetError for %v", tt.target, err, tt.want)
		}
	}
	// Validate renders a slot environment with the sample slot, and refuses
	// what Plan refuses.
	if _, err := prj.Validate(context.Background(), servicescfg.Target{Env: "ai-slot"}); err != nil {
		t.Errorf("Validate(ai-slot) = %v", err)
	}
	for _, tt := range tests[:1] {
		if _, err := prj.Validate(context.Background(), tt.target); !errors.Is(err, tt.want) {
			t.Errorf("Validate(%+v) = %v, want %v", tt.target, err, tt.want)
		}
	}
	if _, err := prj.Validate(context.Background(), tests[2].target); !errors.Is(err, plan.ErrSlotNotAllowed) {
		t.Errorf("Validate(%+v) = %v, want %v", tests[2].target, err, plan.ErrSlotNotAllowed)
	}
}

func TestOpenProblems(t *testing.T) {
	if _, err := servicescfg.Open(filepath.Join(t.TempDir(), "services.yaml"), servicescfg.Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing) = %v, want fs.ErrNotExist", err)
	}
	// A stack with problems opens; Plan and Validate report them, at their
	// positions.
	dir := t.TempDir()
	path := filepath.Join(dir, "services.yaml")
	if err := os.WriteFile(path, []byte(`apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "demo-dev"}
  services:
    - name: web
      dependsOn: [nothing]
      manifests: [web.yaml]
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	prj, err := servicescfg.Open(path, servicescfg.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	var list diag.List
	for name, err := range map[string]error{
		"Problems": prj.Problems(),
		"Plan":     second(prj.Plan(context.Background(), servicescfg.Target{Env: "dev"})),
		"Validate": second(prj.Validate(context.Background())),
	} {
		if !errors.As(err, &list) || len(list) != 1 || list[0].Pos.Line != 10 {
			t.Errorf("%s = %v, want the one problem at line 10", name, err)
		}
	}
}

func second[T any](_ T, err error) error { return err }
