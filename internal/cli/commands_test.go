package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestValidateRealStacks(t *testing.T) {
	for _, cfg := range []string{"../../services.yaml", "../../examples/new-project/services.yaml"} {
		code, out, stderr := run(t, "validate", "--config", cfg)
		if code != 0 {
			t.Fatalf("validate %s: exit %d\n%s", cfg, code, stderr)
		}
		for _, env := range []string{"dev:", "staging:", "prod:", "ai-slot (slot 1):"} {
			if !strings.Contains(out, env) {
				t.Errorf("validate %s output lacks %q:\n%s", cfg, env, out)
			}
		}
	}
	// Missing install variables are a note on stderr, never a failure.
	_, _, stderr := run(t, "validate", "--config", "../../services.yaml")
	if !strings.Contains(stderr, "note: ") || !strings.Contains(stderr, "  CODEXK8S_DOMAIN") || !strings.Contains(stderr, "CODEX_VAR_NAME") {
		t.Errorf("validate lacks the note on missing variables:\n%s", stderr)
	}
}

// TestValidateReportsEverything checks that one run lists every problem of a
// broken stack, positioned, sorted, and exits 1.
func TestValidateReportsEverything(t *testing.T) {
	code, out, stderr := run(t, "validate", "--config", "testdata/broken/services.yaml")
	if code != ExitFailure {
		t.Fatalf("exit %d, want 1", code)
	}
	if out != "" {
		t.Errorf("stdout must stay empty on failure, got %q", out)
	}
	want := []string{
		`m/api.yaml:1: no template "nope"`,
		`m/db.yaml:4: at <.Vars.missing>: map has no entry for key "missing"`,
		`services.yaml:6:26: partial pattern "p/*.tpl" matches no file`,
		`services.yaml:6:37: partial "../x.tpl" leaves the stack root`,
		`services.yaml:6:49: partial pattern "p/[a" is not a valid glob: missing closing ]`,
		`services.yaml:9:15: environment "x" inherits from unknown environment "y"`,
		`services.yaml:11:54: infrastructure node "db" in group "stateful" depends on "api" in the later group "internal"`,
		`services.yaml:15:19: dependency cycle: api -> db -> api`,
		`services.yaml:15:23: service "api" depends on unknown node "ghost"`,
		`services.yaml:17:7: unknown field "colour" in spec.services[0]`,
		`services.yaml:18:14: duplicate node name "api" (first declared at line 13)`,
		`services.yaml:18:31: manifest pattern "nothing/*.yaml" matches no file`,
		`12 problems found`,
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != len(want) {
		t.Errorf("got %d lines, want %d:\n%s", len(lines), len(want), stderr)
	}
	last := 0
	for _, w := range want {
		i := indexOfLine(lines, w)
		if i < 0 {
			t.Errorf("missing %q in:\n%s", w, stderr)
			continue
		}
		if i < last {
			t.Errorf("%q out of order", w)
		}
		last = i
	}
}

func indexOfLine(lines []string, prefix string) int {
	for i, l := range lines {
		if strings.HasPrefix(filepath.ToSlash(l), prefix) || strings.Contains(l, "/"+prefix) {
			return i
		}
	}
	return -1
}

func TestReconcileDryRunJSON(t *testing.T) {
	code, out, stderr := run(t, "reconcile", "--config", "../../services.yaml", "--env", "ai-slot", "--slot", "3", "--dry-run", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	var doc struct {
		Environment, Namespace, Slot string
		Steps                        []struct {
			Name, Group string
			DependsOn   []string
			Objects     []struct{ APIVersion, Kind, Name, Namespace string }
		}
	}
	dec := json.NewDecoder(strings.NewReader(out))
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, out)
	}
	if dec.More() {
		t.Fatal("stdout holds more than one JSON document")
	}
	if doc.Environment != "ai-slot" || doc.Slot != "3" || doc.Namespace != "codex-k8s-dev-3" {
		t.Errorf("header = %+v", doc)
	}
	var groups []string
	for _, s := range doc.Steps {
		if len(groups) == 0 || groups[len(groups)-1] != s.Group {
			groups = append(groups, s.Group)
		}
		if s.DependsOn == nil {
			t.Errorf("step %s: dependsOn must be a list", s.Name)
		}
		for _, o := range s.Objects {
			if o.APIVersion == "" || o.Kind == "" || o.Name == "" || o.Namespace != "codex-k8s-dev-3" {
				t.Errorf("step %s object %+v", s.Name, o)
			}
		}
	}
	if strings.Join(groups, ",") != "stateful,migrations,internal,edge,frontend" {
		t.Errorf("groups in order = %v", groups)
	}
	if strings.Contains(out, `"time"`) || strings.Contains(out, `"duration"`) {
		t.Error("a plan holds no timestamps")
	}
}

func TestReconcileDryRunOutputDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	code, out, stderr := run(t, "reconcile", "--config", "../../examples/new-project/services.yaml", "--env", "dev", "--dry-run", "--output-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if !strings.Contains(out, "namespace:") {
		t.Errorf("text plan missing:\n%s", out)
	}
	all, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var entries []os.DirEntry
	for _, e := range all {
		switch {
		case e.Name() == manifestsMarker:
		case strings.HasPrefix(e.Name(), "."):
			t.Errorf("staging folder left behind: %s", e.Name())
		default:
			entries = append(entries, e)
		}
	}
	if len(entries) == 0 || !strings.HasPrefix(entries[0].Name(), "01-") {
		t.Fatalf("output dir entries = %v", entries)
	}
	for _, e := range entries {
		files, _ := os.ReadDir(filepath.Join(dir, e.Name()))
		if len(files) == 0 {
			t.Errorf("%s holds no manifest", e.Name())
		}
		for _, f := range files {
			if strings.HasSuffix(f.Name(), ".tpl") {
				t.Errorf("%s/%s keeps the .tpl suffix", e.Name(), f.Name())
			}
		}
	}
}

// TestOutputDirReplacesEarlierRender renders staging (8 steps) then prod (6)
// into one folder: nothing of staging may stay, and a folder with other
// content is refused.
func TestOutputDirReplacesEarlierRender(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	for _, env := range []string{"staging", "prod"} {
		if code, _, stderr := run(t, "reconcile", "--config", "../../services.yaml", "--env", env, "--dry-run", "--output-dir", dir); code != 0 {
			t.Fatalf("%s: exit %d\n%s", env, code, stderr)
		}
	}
	entries, _ := os.ReadDir(dir)
	var steps []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			steps = append(steps, e.Name())
		}
	}
	_, out, _ := run(t, "reconcile", "--config", "../../services.yaml", "--env", "prod", "--dry-run", "-o", "json")
	var doc struct{ Steps []struct{ Name string } }
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	if len(steps) != len(doc.Steps) {
		t.Errorf("folders after rendering prod over staging: %v, want the %d steps of prod", steps, len(doc.Steps))
	}

	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "keep.txt"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "reconcile", "--config", "../../services.yaml", "--env", "prod", "--dry-run", "--output-dir", other)
	if code != ExitFailure || !strings.Contains(stderr, "not empty") {
		t.Errorf("writing into a foreign folder: exit %d, %s", code, stderr)
	}
	if data, err := os.ReadFile(filepath.Join(other, "keep.txt")); err != nil || string(data) != "mine" {
		t.Errorf("foreign file touched: %q %v", data, err)
	}
}

func TestReconcileSlotRules(t *testing.T) {
	for _, args := range [][]string{
		{"reconcile", "--config", "../../services.yaml", "--env", "ai-slot", "--dry-run"},
		{"reconcile", "--config", "../../services.yaml", "--env", "dev", "--slot", "1", "--dry-run"},
		{"reconcile", "--config", "../../services.yaml", "--env", "nope", "--dry-run"},
	} {
		code, _, stderr := run(t, args...)
		if code != ExitUsage {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, stderr)
		}
	}
}

func TestMissingConfigFile(t *testing.T) {
	code, _, stderr := run(t, "validate", "--config", "testdata/none/services.yaml")
	if code != ExitFailure || !strings.Contains(stderr, "testdata/none/services.yaml") {
		t.Errorf("exit %d, stderr %q", code, stderr)
	}
}

// TestValidateTemplateValues checks the errors of templates inside
// services.yaml: said once, at the value, naming what they belong to.
func TestValidateTemplateValues(t *testing.T) {
	code, _, stderr := run(t, "validate", "--config", "testdata/when/services.yaml")
	if code != ExitFailure {
		t.Fatalf("exit %d", code)
	}
	want := []string{
		`testdata/when/services.yaml:7:49: namespaceTemplate of environment dev: at <.Nope>: the template context has no field Nope (it has .Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service)`,
		`testdata/when/services.yaml:9:23: when of service "a" is not a valid template: missing value for if`,
		`testdata/when/services.yaml:10:23: when of node b: function "bogusfn" not defined`,
		`3 problems found`,
	}
	if got := strings.TrimSpace(stderr); got != strings.Join(want, "\n") {
		t.Errorf("stderr:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestOutputDirKeepsFilesItDidNotWrite: a file added to a rendered folder
// (beside the step folders or inside one) makes the next render refuse,
// and the file stays; once it is moved out, the render goes on.
func TestOutputDirKeepsFilesItDidNotWrite(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	render := func() (int, string) {
		code, _, stderr := run(t, "reconcile", "--config", "../../examples/new-project/services.yaml", "--env", "dev", "--dry-run", "--output-dir", dir)
		return code, stderr
	}
	if code, stderr := render(); code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	steps, _ := filepath.Glob(filepath.Join(dir, "01-*"))
	if len(steps) != 1 {
		t.Fatalf("step folders %v", steps)
	}
	mine := []string{filepath.Join(dir, "notes.txt"), filepath.Join(steps[0], "extra.yaml"), filepath.Join(dir, ".render-notes", "mine.txt")}
	for _, f := range mine {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte("mine"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, stderr := render()
	if code != ExitFailure || !strings.Contains(stderr, "did not write") || !strings.Contains(stderr, "notes.txt") ||
		!strings.Contains(stderr, "extra.yaml") || !strings.Contains(stderr, ".render-notes/mine.txt") {
		t.Errorf("render over added files: exit %d\n%s", code, stderr)
	}
	for _, f := range mine {
		if data, err := os.ReadFile(f); err != nil || string(data) != "mine" {
			t.Errorf("%s: %q %v", f, data, err)
		}
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	// A render interrupted before cleaning up leaves its staging folder,
	// listed in the marker before it was made: that is the tool's own and
	// goes.
	m, err := readMarker(dir)
	if err != nil {
		t.Fatal(err)
	}
	m.staging[stagingPrefix+"123"] = true
	if err := writeMarker(dir, m); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, stagingPrefix+"123", "01-x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, stagingPrefix+"123", "01-x", "a.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if code, stderr := render(); code != 0 {
		t.Fatalf("exit %d after moving the files out\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, stagingPrefix+"123")); !os.IsNotExist(err) {
		t.Errorf("the interrupted render's staging folder stayed: %v", err)
	}
	marker, err := os.ReadFile(filepath.Join(dir, manifestsMarker))
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for l := range strings.SplitSeq(string(marker), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			listed++
			if l, err = strconv.Unquote(l); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(l))); err != nil {
				t.Errorf("the marker lists %s: %v", l, err)
			}
		}
	}
	if listed == 0 {
		t.Errorf("the marker lists no file:\n%s", marker)
	}
}

// TestOutputDirReadsAnOldMarker: a folder marked before the marker listed
// its files owns what is inside its step folders.
func TestOutputDirReadsAnOldMarker(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, manifestsMarker), []byte("written by codex-bootstrap reconcile --dry-run --output-dir\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "07-old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "07-old", "a.yaml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := run(t, "reconcile", "--config", "../../examples/new-project/services.yaml", "--env", "dev", "--dry-run", "--output-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "07-old")); !os.IsNotExist(err) {
		t.Errorf("the old render's step folder stayed: %v", err)
	}
}

// TestValidateChecksManifestsNoEnvironmentRenders: a node whose when is
// false in every environment still has its manifests checked.
func TestValidateChecksManifestsNoEnvironmentRenders(t *testing.T) {
	root := writeTree(t, map[string]string{
		"services.yaml": "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n" +
			"  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n" +
			"  services:\n    - {name: a, manifests: [m/a.yaml]}\n    - {name: b, when: 'false', manifests: [m/b.yaml]}\n",
		"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"m/b.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\ndata:\n  x: {{ if }}\n",
	})
	code, _, stderr := run(t, "validate", "--config", filepath.Join(root, "services.yaml"))
	if code != ExitFailure || !strings.Contains(stderr, "m/b.yaml:5: missing value for if") || !strings.Contains(stderr, "1 problem found") {
		t.Errorf("exit %d\n%s", code, stderr)
	}
}

// TestValuesMustMatchTheirPatterns: a value from the config file or the
// environment that does not match its variable's pattern stops validate and
// a dry run, placed at its line in the config file, without the value.
func TestValuesMustMatchTheirPatterns(t *testing.T) {
	root := writeTree(t, map[string]string{
		"services.yaml": "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n" +
			"  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n" +
			"  services:\n    - {name: a, manifests: [m/a.yaml]}\n" +
			"  bootstrap:\n    configFile: config.env\n    variables:\n" +
			"      - {name: DOMAIN, pattern: '[a-z.]+'}\n      - {name: PORT, pattern: '[0-9]+'}\n",
		"m/a.yaml":   "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"config.env": "# values\nDOMAIN=Secret_Looking_Value\n",
	})
	cfg := filepath.Join(root, "services.yaml")
	env := map[string]string{"CODEX_VAR_PORT": "eighty"}
	for _, args := range [][]string{{"validate", "--config", cfg}, {"reconcile", "--config", cfg, "--env", "dev", "--dry-run"}} {
		var out, errOut bytes.Buffer
		f := &Factory{
			IO:        IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
			LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		}
		code, stderr := Run(context.Background(), f, args), errOut.String()
		if code != ExitFailure ||
			!strings.Contains(stderr, `config.env:2:8: the value of DOMAIN does not match its pattern "[a-z.]+"`) ||
			!strings.Contains(stderr, `the value of PORT in the environment (CODEX_VAR_PORT) does not match its pattern "[0-9]+"`) {
			t.Errorf("%v: exit %d\n%s", args, code, stderr)
		}
		if strings.Contains(stderr, "Secret_Looking_Value") || strings.Contains(stderr, "eighty") {
			t.Errorf("%v prints a value:\n%s", args, stderr)
		}
	}
}

// writeTree writes files (slash-separated paths relative to a new temporary
// folder) and returns the folder.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, body := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestMarkerKeepsOddFileNames: the marker lists names with spaces, line
// breaks and carriage returns, and reads them back the same.
func TestMarkerKeepsOddFileNames(t *testing.T) {
	dir := t.TempDir()
	files := map[string]bool{"01-a/a b.yaml": true, "01-a/a\nb.yaml": true, "01-a/a.yaml\r": true, "01-a/a.yaml ": true}
	staging := map[string]bool{stagingPrefix + "a b": true}
	if err := writeMarker(dir, marker{files: files, staging: staging}); err != nil {
		t.Fatal(err)
	}
	got, err := readMarker(dir)
	if err != nil || !got.present || got.legacy || !reflect.DeepEqual(got.files, files) || !reflect.DeepEqual(got.staging, staging) {
		t.Errorf("read back %+v, %v; want %v and %v", got, err, files, staging)
	}
}
