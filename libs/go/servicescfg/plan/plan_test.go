package plan

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

// repoRoot is the repository root, where the real stacks live.
const repoRoot = "../../../.."

// realStacks are the platform's own stack and the example project's.
var realStacks = map[string]string{
	"platform":    filepath.Join(repoRoot, "services.yaml"),
	"new-project": filepath.Join(repoRoot, "examples/new-project/services.yaml"),
}

type target struct{ env, slot string }

var targets = []target{{"dev", ""}, {"staging", ""}, {"ai-slot", "1"}, {"ai-slot", "2"}, {"ai-slot", "3"}, {"prod", ""}}

func load(t testing.TB, path string) *stack.Stack {
	t.Helper()
	s, err := stack.Load(path)
	if err != nil {
		t.Fatalf("load %s: %v", path, err)
	}
	return s
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./libs/go/servicescfg/plan -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if intended):\n%s", path, diffLines(string(want), string(got)))
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("- " + a + "\n+ " + c + "\n")
		}
	}
	return b.String()
}

// TestRealStacksGolden plans both real stacks for every environment and
// compares text, JSON and every rendered manifest with golden files.
func TestRealStacksGolden(t *testing.T) {
	for name, path := range realStacks {
		s := load(t, path)
		for _, tg := range targets {
			id := name + "-" + tg.env + tg.slot
			t.Run(id, func(t *testing.T) {
				p, err := Build(context.Background(), s, Options{Env: tg.env, Slot: tg.slot})
				if err != nil {
					t.Fatal(err)
				}
				var js bytes.Buffer
				if err := p.WriteJSON(&js); err != nil {
					t.Fatal(err)
				}
				golden(t, id+".plan.txt", []byte(p.String()))
				golden(t, id+".plan.json", js.Bytes())
				var manifests bytes.Buffer
				for _, st := range p.Nodes {
					for _, m := range st.Manifests {
						manifests.WriteString("---\n# " + st.Name + ": " + m.Path + "\n")
						manifests.Write(m.Data)
						if !bytes.HasSuffix(m.Data, []byte("\n")) {
							manifests.WriteByte('\n')
						}
					}
				}
				golden(t, id+".manifests.yaml", manifests.Bytes())

				// A plan of identities only prints the same and keeps no
				// object content.
				idp, err := Build(context.Background(), s, Options{Env: tg.env, Slot: tg.slot, IdentityOnly: true})
				if err != nil {
					t.Fatal(err)
				}
				var idjs bytes.Buffer
				if err := idp.WriteJSON(&idjs); err != nil {
					t.Fatal(err)
				}
				if idjs.String() != js.String() || idp.String() != p.String() {
					t.Error("the identity-only plan prints differently")
				}
				for _, st := range idp.Nodes {
					for _, o := range st.Objects {
						if o.Object != nil {
							t.Errorf("identity-only plan keeps the content of %s %s", o.Kind, o.Name)
						}
					}
				}
			})
		}
	}
}

func TestDeterministic(t *testing.T) {
	s := load(t, filepath.Join(repoRoot, "services.yaml"))
	var first []byte
	for i := range 5 {
		p, err := Build(context.Background(), s, Options{Env: "ai-slot", Slot: "2", Parallel: i + 1})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if err := p.WriteJSON(&b); err != nil {
			t.Fatal(err)
		}
		b.WriteString(p.String())
		if i == 0 {
			first = b.Bytes()
		} else if !bytes.Equal(first, b.Bytes()) {
			t.Fatalf("run %d differs from run 0", i)
		}
	}
}

func TestOrderRespectsGroupsAndDependencies(t *testing.T) {
	for _, path := range []string{"services.yaml", "examples/new-project/services.yaml"} {
		s := load(t, filepath.Join(repoRoot, path))
		for _, tg := range targets {
			p, err := Build(context.Background(), s, Options{Env: tg.env, Slot: tg.slot})
			if err != nil {
				t.Fatal(err)
			}
			pos := map[string]int{}
			for i, st := range p.Nodes {
				pos[st.Name] = i
			}
			for i, st := range p.Nodes {
				for _, d := range st.After {
					dep := p.Node(d)
					if dep == nil {
						t.Fatalf("%s: %s waits for missing %s", path, st.Name, d)
					}
					if pos[d] >= i || dep.Level >= st.Level {
						t.Errorf("%s %s: %s (level %d) must come after %s (level %d)", path, tg.env, st.Name, st.Level, d, dep.Level)
					}
				}
				if i > 0 {
					prev := p.Nodes[i-1]
					if s.GroupIndex(prev.Group) > s.GroupIndex(st.Group) {
						t.Errorf("%s: group %s after %s", path, st.Group, prev.Group)
					}
					// Stages rank the groups: the same group, the same
					// stage; a later group, the next stage.
					switch {
					case prev.Group == st.Group && prev.Stage != st.Stage,
						prev.Group != st.Group && prev.Stage+1 != st.Stage:
						t.Errorf("%s: %s (group %s) has stage %d after %s (group %s, stage %d)", path, st.Name, st.Group, st.Stage, prev.Name, prev.Group, prev.Stage)
					}
				} else if st.Stage != 0 {
					t.Errorf("%s: the first node %s has stage %d", path, st.Name, st.Stage)
				}
			}
		}
	}
}

// writeStack writes files under a temporary root and loads its services.yaml.
func writeStack(t *testing.T, files map[string]string) *stack.Stack {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return load(t, filepath.Join(root, "services.yaml"))
}

const header = `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: t}
spec:
  project: demo
  templates: {partials: [partials/*.tpl]}
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
    slot: {from: dev, slots: true, namespaceTemplate: "{{ .Project }}-dev-{{ .Slot }}"}
    prod: {runtime: prod, namespaceTemplate: "{{ .Project }}"}
`

func TestMinimalStackAndLevels(t *testing.T) {
	s := writeStack(t, map[string]string{
		"services.yaml": header + `  infrastructure:
    - {name: db, manifests: [m/db.yaml]}
    - {name: cache, manifests: [m/cache.yaml]}
  services:
    - {name: migrate, group: migrations, dependsOn: [db], manifests: [m/migrate.yaml]}
    - {name: api, group: internal, manifests: [m/api.yaml]}
    - {name: worker, group: internal, dependsOn: [api], manifests: [m/worker.yaml]}
    - {name: ui, group: frontend, when: '{{ ne .Env "prod" }}', manifests: [m/ui.yaml]}
`,
		"partials/l.tpl": `{{ define "l" }}app: {{ .Service.Name }}{{ end }}`,
		"m/db.yaml":      "apiVersion: v1\nkind: Service\nmetadata:\n  name: db\n  labels:\n    {{- include \"l\" . | nindent 4 }}\n",
		"m/cache.yaml":   "apiVersion: v1\nkind: Service\nmetadata: {name: cache}\n---\n# only a comment\n---\n",
		"m/migrate.yaml": "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\n",
		"m/api.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api, namespace: {{ .Namespace }}}\n",
		"m/worker.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: worker}\n",
		"m/ui.yaml":      "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ui}\n",
	})
	p, err := Build(context.Background(), s, Options{Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	want := "[[db cache] [migrate] [api] [worker] [ui]]"
	if got := strings.ReplaceAll(strings.Trim(strings.Join(strings.Fields(strings.Trim(fmtLevels(p.Levels()), "")), " "), " "), "  ", " "); got != want {
		t.Errorf("levels = %s, want %s", got, want)
	}
	db := p.Node("db")
	if len(db.Objects) != 1 || db.Objects[0].Namespace != "demo-dev" || db.Objects[0].Object.GetLabels()["app"] != "db" {
		t.Errorf("db objects = %+v", db.Objects[0])
	}
	// worker names its dependency and waits for the earlier groups by its
	// stage: infrastructure 0, migrations 1, internal 2, frontend 3.
	if got := p.Node("worker").After; strings.Join(got, ",") != "api" {
		t.Errorf("worker waits for %v", got)
	}
	for name, stage := range map[string]int{"db": 0, "cache": 0, "migrate": 1, "api": 2, "worker": 2, "ui": 3} {
		if got := p.Node(name).Stage; got != stage {
			t.Errorf("%s: stage %d, want %d", name, got, stage)
		}
	}
	prod, err := Build(context.Background(), s, Options{Env: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	if prod.Node("ui") != nil || len(prod.Skipped) != 1 || prod.Skipped[0].Name != "ui" {
		t.Errorf("prod must skip ui: steps %v skipped %v", prod.Levels(), prod.Skipped)
	}
	if prod.HotReload || !p.HotReload {
		t.Error("hot reload must be on in dev and off in prod")
	}
}

func fmtLevels(l [][]string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, lv := range l {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("[" + strings.Join(lv, " ") + "]")
	}
	b.WriteString("]")
	return b.String()
}

func TestUsageErrors(t *testing.T) {
	s := writeStack(t, map[string]string{
		"services.yaml":  header + "  services:\n    - {name: api, manifests: [m/api.yaml]}\n",
		"partials/l.tpl": "",
		"m/api.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: api}\n",
	})
	for _, tt := range []struct {
		env, slot string
		want      error
	}{
		{"nope", "", ErrUnknownEnvironment},
		{"slot", "", ErrSlotRequired},
		{"dev", "1", ErrSlotNotAllowed},
		{"slot", "Bad_Slot", ErrInvalidSlot},
	} {
		_, err := Build(context.Background(), s, Options{Env: tt.env, Slot: tt.slot})
		if !errors.Is(err, tt.want) {
			t.Errorf("Build(%s, %q) = %v, want %v", tt.env, tt.slot, err, tt.want)
		}
	}
	p, err := Build(context.Background(), s, Options{Env: "slot", Slot: "7"})
	if err != nil || p.Namespace != "demo-dev-7" || p.Environment != "slot" {
		t.Errorf("slot plan: %v %+v", err, p)
	}
}

func TestRenderProblems(t *testing.T) {
	tests := []struct {
		name  string
		nodes string
		files map[string]string
		env   string
		slot  string
		want  []string
	}{
		{
			name:  "when not boolean",
			nodes: "    - {name: api, when: '{{ .Env }}', manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"},
			want:  []string{`services.yaml:12:25: when of node api rendered "dev" in environment dev (a when template must render to true or false)`},
		},
		{
			name: "same object twice",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n" +
				"    - {name: b, manifests: [m/b.yaml]}\n",
			files: map[string]string{
				"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n",
				"m/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n",
			},
			want: []string{"services.yaml:13:28: ConfigMap demo-dev/same (m/b.yaml#0) is rendered by node b and also by node a (m/a.yaml#0) (each object must belong to exactly one node)"},
		},
		{
			name:  "no name",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\nkind: [\n"},
			want: []string{
				"m/a.yaml:1: rendered document 1 (line 1 of the rendered output): v1 ConfigMap has no metadata.name",
				`m/a.yaml:5: rendered document 2 is not valid YAML at line 5 of the rendered output ("kind: ["): did not find expected node content`,
			},
		},
		{
			name:  "same object twice in one node",
			nodes: "    - {name: a, manifests: [m/*.yaml]}\n",
			files: map[string]string{
				"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n",
				"m/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: same}\n",
			},
			want: []string{"services.yaml:12:28: ConfigMap demo-dev/same is rendered twice by node a (m/a.yaml#0 and m/b.yaml#0)"},
		},
		{
			name:  "a document that lost its ---",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n"},
			want:  []string{`m/a.yaml:5: rendered document 1 is not valid YAML at line 5 of the rendered output ("apiVersion: v1"): key "apiVersion" already set in map`},
		},
		{
			name:  "names the API server would refuse",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: A_b}\n---\n" +
				"apiVersion: v1\nkind: Service\nmetadata: {name: 9lives}\n---\n" +
				"apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: a/b}\n---\n" +
				"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: Not_A_Label}\n---\n" +
				"apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: \"system:codex:reader\"}\n---\n" +
				"apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: " + strings.Repeat("c", 53) + "}\n"},
			want: []string{
				`m/a.yaml:1: rendered document 1 (line 1 of the rendered output): ConfigMap name "A_b" is not valid: a lowercase RFC 1123 subdomain`,
				`m/a.yaml:5: rendered document 2 (line 5 of the rendered output): Service name "9lives" is not valid: a DNS-1035 label`,
				`m/a.yaml:9: rendered document 3 (line 9 of the rendered output): Widget name "a/b" is not valid: may not contain '/' or '%'`,
				`m/a.yaml:13: rendered document 4 (line 13 of the rendered output): ConfigMap ok has namespace "Not_A_Label", which is not a valid DNS label`,
				`m/a.yaml:21: rendered document 6 (line 21 of the rendered output): CronJob name "` + strings.Repeat("c", 53) + `" is not valid: must be no more than 52 characters`,
			},
		},
		{
			name:  "bad YAML from a partial",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{
				"partials/l.tpl": "{{ define \"labels\" }}app: a\n  tier: web{{ end }}",
				"m/a.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  labels:\n    {{- include \"labels\" . | nindent 4 }}\n",
			},
			// Placed at the include that printed the bad line.
			want: []string{`m/a.yaml:6: rendered document 1 is not valid YAML at line 7 of the rendered output ("      tier: web"): mapping values are not allowed in this context`},
		},
		{
			name:  "cluster-scoped in slot",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: other}\n"},
			env:   "slot", slot: "1",
			want: []string{
				"m/a.yaml: ClusterRole r of node a is cluster-scoped: in slot environment slot it would collide across slots (set clusterScoped: true on the node if every slot may share it)",
				"m/a.yaml: ConfigMap c of node a is in namespace other, outside the slot namespace demo-dev-1 (drop metadata.namespace or set clusterScoped: true on the node)",
			},
		},
		{
			name: "dependency left out",
			nodes: "    - {name: a, when: '{{ eq .Env \"prod\" }}', manifests: [m/a.yaml]}\n" +
				"    - {name: b, dependsOn: [a], manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Service.Name }}}\n"},
			want:  []string{"services.yaml:13:28: node b depends on a, which is left out of environment dev (when is false in dev) (enable the dependency in this environment or disable the dependent too)"},
		},
		{
			name:  "template error names the manifest",
			nodes: "    - {name: a, manifests: [m/a.yaml]}\n",
			files: map[string]string{"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Vars.nope }}\n"},
			want:  []string{"m/a.yaml:4:"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			files := map[string]string{"services.yaml": header + "  services:\n" + tt.nodes, "partials/l.tpl": ""}
			for k, v := range tt.files {
				files[k] = v
			}
			s := writeStack(t, files)
			env := tt.env
			if env == "" {
				env = "dev"
			}
			_, err := Build(context.Background(), s, Options{Env: env, Slot: tt.slot})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
			// A plan of identities only finds the same problems.
			_, idErr := Build(context.Background(), s, Options{Env: env, Slot: tt.slot, IdentityOnly: true})
			if idErr == nil || idErr.Error() != err.Error() {
				t.Errorf("identity-only build: %v\nfull build: %v", idErr, err)
			}
		})
	}
}

func TestSecretsCarryNoValues(t *testing.T) {
	s := load(t, filepath.Join(repoRoot, "services.yaml"))
	p, err := Build(context.Background(), s, Options{Env: "dev", Config: map[string]string{"CODEXK8S_DOMAIN": "example.org"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Secrets) == 0 {
		t.Fatal("the platform stack declares secrets")
	}
	var b bytes.Buffer
	_ = p.WriteJSON(&b)
	if !strings.Contains(b.String(), `"fromConfig": "CODEXK8S_GITHUB_PAT"`) {
		t.Errorf("secret key sources missing from the plan")
	}
}

func TestSplitDocuments(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		line []int
	}{
		{"a: 1\n", []string{"a: 1\n"}, []int{1}},
		{"a: 1\n---\nb: 2\n", []string{"a: 1\n", "b: 2\n"}, []int{1, 3}},
		{"---\na: 1\n--- # c\nb: 2", []string{"", "a: 1\n", "b: 2"}, []int{1, 2, 4}},
		{"a: '---'\n----\n  ---\n---  \n", []string{"a: '---'\n----\n  ---\n", ""}, []int{1, 5}},
		{"", []string{""}, []int{1}},
	}
	for _, tt := range tests {
		docs := splitDocuments([]byte(tt.in))
		var got []string
		var lines []int
		for _, d := range docs {
			got = append(got, string(d.data))
			lines = append(lines, d.line)
		}
		if strings.Join(got, "|") != strings.Join(tt.want, "|") || fmt.Sprint(lines) != fmt.Sprint(tt.line) {
			t.Errorf("splitDocuments(%q) = %q %v, want %q %v", tt.in, got, lines, tt.want, tt.line)
		}
	}
}

// TestStackFileIsNeverAManifest: a glob such as **/*.yaml also matches
// services.yaml, which is left out.
func TestStackFileIsNeverAManifest(t *testing.T) {
	s := writeStack(t, map[string]string{
		"services.yaml":  header + "  services:\n    - {name: a, manifests: ['**/*.yaml']}\n",
		"partials/l.tpl": "",
		"m/a.yaml":       "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
	})
	p, err := Build(context.Background(), s, Options{Env: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if objs := p.Node("a").Objects; len(objs) != 1 || objs[0].Kind != "ConfigMap" {
		t.Errorf("objects %+v, want the ConfigMap only", objs)
	}
}
