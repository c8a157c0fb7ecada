package renderbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// testN is small but large enough for every group to have several nodes and
// for a frontend node to carry a when.
const testN = 40

func writeStack(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	if err := WriteStack(dir, n); err != nil {
		tb.Fatal(err)
	}
	return filepath.Join(dir, stack.DefaultFile)
}

func TestModelIsDeterministic(t *testing.T) {
	a, b := Model(100), Model(100)
	if !reflect.DeepEqual(a, b) {
		t.Fatal("Model(100) differs between two calls")
	}
	count := map[string]int{}
	for _, s := range a {
		count[s.Group]++
	}
	want := map[string]int{"stateful": 10, "migrations": 10, "internal": 50, "edge": 15, "frontend": 15}
	if !reflect.DeepEqual(count, want) {
		t.Fatalf("group sizes of Model(100) = %v, want %v", count, want)
	}
}

// TestSyntheticStackIsValid keeps the benchmark's input honest: the generated
// stack loads without a problem and plans in every environment, with the
// nodes and objects the generator meant.
func TestSyntheticStackIsValid(t *testing.T) {
	for _, n := range []int{5, testN} {
		t.Run(fmt.Sprintf("N=%d", n), func(t *testing.T) {
			s, err := stack.Load(writeStack(t, n))
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			engine, err := plan.EngineFor(s)
			if err != nil {
				t.Fatalf("partials: %v", err)
			}
			model := Model(n)
			for _, env := range []struct{ name, slot string }{{"dev", ""}, {"staging", ""}, {"ai-slot", "7"}, {"prod", ""}} {
				p, err := plan.Build(context.Background(), s, plan.Options{Env: env.name, Slot: env.slot, Engine: engine})
				if err != nil {
					t.Fatalf("plan %s: %v", env.name, err)
				}
				wantSteps, wantObjects := 0, 0
				for _, svc := range model {
					if env.name == "prod" && svc.When {
						continue
					}
					wantSteps++
					wantObjects += 3
				}
				objects := 0
				for _, st := range p.Nodes {
					objects += len(st.Objects)
				}
				if len(p.Nodes) != wantSteps || objects != wantObjects {
					t.Errorf("%s: %d steps with %d objects, want %d with %d", env.name, len(p.Nodes), objects, wantSteps, wantObjects)
				}
			}
		})
	}
}

// TestChartMatchesStack checks that the chart is the stack's equivalent: helm
// template prints the same objects, field for field, as the plan of dev. It
// needs a helm binary: CODEX_BENCH_HELM names one (bench/render/run.sh sets
// it to the one built by tools/helm/build.sh); without it the test is skipped.
func TestChartMatchesStack(t *testing.T) {
	helm := os.Getenv("CODEX_BENCH_HELM")
	if helm == "" {
		t.Skip("CODEX_BENCH_HELM is not set: build helm with tools/helm/build.sh and set it to compare with helm template")
	}
	dir := t.TempDir()
	if err := WriteStack(filepath.Join(dir, "stack"), testN); err != nil {
		t.Fatal(err)
	}
	if err := WriteChart(filepath.Join(dir, "chart"), testN); err != nil {
		t.Fatal(err)
	}
	s, err := stack.Load(filepath.Join(dir, "stack", stack.DefaultFile))
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	for _, env := range []string{"dev", "prod"} {
		t.Run(env, func(t *testing.T) {
			p, err := plan.Build(context.Background(), s, plan.Options{Env: env})
			if err != nil {
				t.Fatalf("plan: %v", err)
			}
			ours := map[string]any{}
			for _, st := range p.Nodes {
				for _, o := range st.Objects {
					js, err := json.Marshal(o.Object.Object)
					if err != nil {
						t.Fatal(err)
					}
					ours[o.Kind+"/"+o.Namespace+"/"+o.Name] = normalize(t, js)
				}
			}

			cmd := exec.Command(helm, "template", Project, filepath.Join(dir, "chart"),
				"-f", filepath.Join(dir, "chart", "values-"+env+".yaml"), "--namespace", p.Namespace)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr.String())
			}
			theirs := map[string]any{}
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var doc map[string]any
				err := dec.Decode(&doc)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatalf("helm output: %v", err)
				}
				if doc == nil {
					continue
				}
				js, err := json.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				obj := normalize(t, js).(map[string]any)
				meta := obj["metadata"].(map[string]any)
				theirs[fmt.Sprintf("%s/%s/%s", obj["kind"], meta["namespace"], meta["name"])] = obj
			}

			if len(ours) == 0 {
				t.Fatal("the plan has no objects")
			}
			if len(ours) != len(theirs) {
				t.Errorf("codex-bootstrap renders %d objects, helm %d", len(ours), len(theirs))
			}
			for key, o := range ours {
				h, ok := theirs[key]
				switch {
				case !ok:
					t.Errorf("%s: rendered by codex-bootstrap only", key)
				case !reflect.DeepEqual(o, h):
					a, _ := json.MarshalIndent(o, "", "  ")
					b, _ := json.MarshalIndent(h, "", "  ")
					t.Errorf("%s differs:\ncodex-bootstrap: %s\nhelm: %s", key, a, b)
				}
			}
		})
	}
}

// normalize decodes JSON into plain maps, slices, strings, float64 and bools,
// so objects decoded by different libraries compare equal.
func normalize(t *testing.T, js []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(js, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkValidateRenderPlan times what `codex-bootstrap validate --env dev`
// does, in process: load and validate services.yaml, parse the partials,
// render every manifest of dev and build its plan. The stack is generated
// once per N, outside the timing.
func BenchmarkValidateRenderPlan(b *testing.B) {
	// What validate and dry runs build: objects named, not kept.
	benchmarkPlan(b, plan.Options{Env: "dev", IdentityOnly: true})
}

// BenchmarkPlanWithObjects builds the plan reconcile applies: every object
// decoded and kept.
func BenchmarkPlanWithObjects(b *testing.B) {
	benchmarkPlan(b, plan.Options{Env: "dev"})
}

func benchmarkPlan(b *testing.B, opts plan.Options) {
	for _, n := range []int{100, 1000, 5000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			path := writeStack(b, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				s, err := stack.Load(path)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := plan.Build(ctx, s, opts); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(n), "µs/service")
		})
	}
}
