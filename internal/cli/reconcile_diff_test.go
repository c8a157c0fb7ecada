package cli

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// diffStack writes a stack for the diff tests: a ConfigMap, a Deployment,
// a Secret in a manifest, a Job, a node that a later step removes, and
// spec.secrets with a value from config and a generated one.
type diffStack struct {
	t       *testing.T
	dir     string
	project string
	files   map[string]string
}

func newDiffStack(t *testing.T, project string) *diffStack {
	s := &diffStack{t: t, dir: t.TempDir(), project: project, files: map[string]string{
		"cm.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n",
		"secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {token: CANARY-MANIFEST-1}\n",
		"old.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\ndata: {x: z}\n",
		"job.yaml":    "apiVersion: batch/v1\nkind: Job\nmetadata: {name: migrate}\nspec:\n  backoffLimit: 0\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: m, image: example.test/migrate:1}]\n",
		"web.yaml": `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: example.test/web:1}]}
`,
	}}
	s.nodes(`    - {name: settings, group: stateful, manifests: [cm.yaml, secret.yaml]}
    - {name: old, group: stateful, manifests: [old.yaml]}
    - {name: migrate, group: migrations, manifests: [job.yaml]}
    - {name: web, group: internal, dependsOn: [settings], manifests: [web.yaml]}
`)
	return s
}

// nodes rewrites services.yaml with these services.
func (s *diffStack) nodes(services string) {
	s.files["services.yaml"] = `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: diff-test}
spec:
  project: ` + s.project + `
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
  secrets:
    - name: app-secrets
      data:
        TOKEN: {fromConfig: APP_TOKEN}
        KEY: {generate: {length: 24}}
  bootstrap:
    variables:
      - {name: APP_TOKEN, required: true, secret: true}
  services:
` + services
	s.write()
}

// edit replaces text in one manifest.
func (s *diffStack) edit(file, old, new string) {
	if !strings.Contains(s.files[file], old) {
		s.t.Fatalf("%s lacks %q", file, old)
	}
	s.files[file] = strings.ReplaceAll(s.files[file], old, new)
	s.write()
}

func (s *diffStack) write() {
	for name, body := range s.files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(body), 0o644); err != nil {
			s.t.Fatal(err)
		}
	}
}

func (s *diffStack) path() string { return filepath.Join(s.dir, "services.yaml") }

// canaries are secret values that must never be printed, raw or base64.
func checkNoCanaries(t *testing.T, what, text string, canaries ...string) {
	t.Helper()
	for _, c := range canaries {
		for _, form := range []string{c, base64.StdEncoding.EncodeToString([]byte(c))} {
			if strings.Contains(text, form) {
				t.Errorf("%s shows a secret value (%q)", what, c)
			}
		}
	}
}

// liveVersions maps every object of the namespace's planned kinds, the
// namespace itself and its lease to its resourceVersion.
func liveVersions(t *testing.T, dyn dynamic.Interface, ns string) map[string]string {
	t.Helper()
	out := map[string]string{}
	ctx := context.Background()
	for _, gvr := range []schema.GroupVersionResource{
		{Version: "v1", Resource: "configmaps"}, {Version: "v1", Resource: "secrets"},
		{Group: "apps", Version: "v1", Resource: "deployments"}, {Group: "batch", Version: "v1", Resource: "jobs"},
		{Group: "coordination.k8s.io", Version: "v1", Resource: "leases"},
	} {
		l, err := dyn.Resource(gvr).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range l.Items {
			out[gvr.Resource+"/"+o.GetName()] = o.GetResourceVersion()
		}
	}
	n, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, ns, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out["namespace"] = n.GetResourceVersion()
	return out
}

// diffJSON runs --diff -o json and decodes it.
func diffJSON(t *testing.T, env map[string]string, args ...string) (int, apply.DiffResult, string) {
	t.Helper()
	code, out, stderr := runEnv(t, env, append(args, "--diff", "-o", "json")...)
	var res apply.DiffResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("-o json is not one document: %v\n%s\n%s", err, out, stderr)
	}
	return code, res, out + stderr
}

func objectDiff(t *testing.T, res apply.DiffResult, kind, name string) apply.ObjectDiff {
	t.Helper()
	for _, o := range slicesConcat(res.Objects, res.Prune) {
		if o.Object.Kind == kind && o.Object.Name == name {
			return o
		}
	}
	t.Fatalf("no %s %s in the diff: %+v", kind, name, res)
	return apply.ObjectDiff{}
}

func slicesConcat(a, b []apply.ObjectDiff) []apply.ObjectDiff {
	return append(append([]apply.ObjectDiff{}, a...), b...)
}

func hasLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == line {
			return true
		}
	}
	return false
}

// TestReconcileDiffAgainstCluster walks a stack through the cases an
// operator asks "what will change?" about, against the real cluster: a
// fresh namespace, a no-op, changed fields, a removed node, a changed
// Secret, a field of another manager and an immutable field, checking
// each time that --diff wrote nothing.
func TestReconcileDiffAgainstCluster(t *testing.T) {
	kc := clusterKubeconfig(t)
	cfg, err := clientcmd.BuildConfigFromFlags("", kc)
	if err != nil {
		t.Fatal(err)
	}
	dyn := dynamic.NewForConfigOrDie(cfg)
	project := "clidiff" + strconv.Itoa(os.Getpid())
	ns := project + "-dev"
	t.Cleanup(func() { deleteNamespace(t, kc, ns) })
	s := newDiffStack(t, project)
	env := map[string]string{"CODEX_VAR_APP_TOKEN": "CANARY-CONFIG-1"}
	canaries := []string{"CANARY-MANIFEST-1", "CANARY-MANIFEST-2", "CANARY-CONFIG-1", "CANARY-CONFIG-2"}
	base := []string{"reconcile", "--config", s.path(), "--env", "dev", "--kubeconfig", kc}

	// A fresh namespace: everything new, and nothing created.
	code, out, stderr := runEnv(t, env, append(base, "--diff", "--exit-code")...)
	if code != ExitChanges {
		t.Fatalf("fresh: exit %d, want %d\n%s%s", code, ExitChanges, out, stderr)
	}
	for _, want := range []string{"namespace " + ns + ": new", "+ create Deployment " + ns + "/web", "+ create Secret " + ns + "/app-secrets (keys KEY, TOKEN; values not shown)",
		"+ create Secret " + ns + "/creds (keys token; values not shown)", "+ create Job " + ns + "/migrate", "summary: 7 to create"} {
		if !strings.Contains(out, want) {
			t.Errorf("fresh diff lacks %q:\n%s", want, out)
		}
	}
	checkNoCanaries(t, "fresh diff", out+stderr, canaries...)
	if _, err := dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("--diff created the namespace (%v)", err)
	}

	if code, out, stderr := runEnv(t, env, base...); code != 0 {
		t.Fatalf("reconcile: exit %d\n%s%s", code, out, stderr)
	}

	// A no-op: nothing to do, exit 0 with --exit-code, nothing written.
	before := liveVersions(t, dyn, ns)
	code, out, stderr = runEnv(t, env, append(base, "--diff", "--exit-code")...)
	if code != 0 || !strings.Contains(out, "(no changes)") || !strings.Contains(out, "web: unchanged (1 object)") {
		t.Fatalf("no-op: exit %d, want 0 and no changes\n%s%s", code, out, stderr)
	}
	checkNoCanaries(t, "no-op diff", out+stderr, canaries...)
	code, res, all := diffJSON(t, env, base...)
	if code != 0 || res.HasChanges() || res.Unchanged != 7 {
		t.Errorf("no-op -o json: exit %d, %+v", code, res)
	}
	checkNoCanaries(t, "no-op diff -o json", all, canaries...)
	if after := liveVersions(t, dyn, ns); !maps.Equal(before, after) {
		t.Errorf("--diff changed the cluster:\nbefore %v\nafter  %v", before, after)
	}

	s.edit("web.yaml", "example.test/web:1", "example.test/web:2")
	s.edit("cm.yaml", "{a: b}", "{a: c}")
	s.edit("secret.yaml", "CANARY-MANIFEST-1", "CANARY-MANIFEST-2")
	s.edit("job.yaml", "migrate:1", "migrate:2")
	s.nodes(`    - {name: settings, group: stateful, manifests: [cm.yaml, secret.yaml]}
    - {name: migrate, group: migrations, manifests: [job.yaml]}
    - {name: web, group: internal, dependsOn: [settings], manifests: [web.yaml]}
`)
	env["CODEX_VAR_APP_TOKEN"] = "CANARY-CONFIG-2"
	checkChanges(t, env, base, ns, canaries)
	if after := liveVersions(t, dyn, ns); !maps.Equal(before, after) {
		t.Errorf("--diff changed the cluster:\nbefore %v\nafter  %v", before, after)
	}

	checkConflictAndImmutable(t, env, base, s, dyn, ns)
}

// checkChanges: a changed image, ConfigMap value, Secret and Job, and a
// removed node.
func checkChanges(t *testing.T, env map[string]string, base []string, ns string, canaries []string) {
	t.Helper()
	code, out, stderr := runEnv(t, env, append(base, "--diff", "--exit-code")...)
	if code != ExitChanges {
		t.Errorf("changed: exit %d, want %d\n%s%s", code, ExitChanges, out, stderr)
	}
	for _, want := range []string{"~ change Deployment " + ns + "/web", "~ change ConfigMap " + ns + "/settings",
		"~ change Secret " + ns + "/creds (keys token; values not shown)", "~ change Secret " + ns + "/app-secrets (keys TOKEN; values not shown)",
		"! recreate Job " + ns + "/migrate: the Job changed", "prune\n  - prune ConfigMap " + ns + "/old"} {
		if !strings.Contains(out, want) {
			t.Errorf("changed diff lacks %q:\n%s", want, out)
		}
	}
	checkNoCanaries(t, "changed diff", out+stderr, canaries...)
	_, res, all := diffJSON(t, env, base...)
	checkNoCanaries(t, "changed diff -o json", all, canaries...)
	web := objectDiff(t, res, "Deployment", "web")
	for _, line := range []string{"-      - image: example.test/web:1", "+      - image: example.test/web:2", "--- live", "+++ applied"} {
		if !hasLine(web.Diff, line) {
			t.Errorf("Deployment diff lacks the line %q:\n%s", line, web.Diff)
		}
	}
	for _, noise := range []string{"managedFields", "resourceVersion", "generation", "status:", "uid:"} {
		if strings.Contains(web.Diff, noise) {
			t.Errorf("Deployment diff shows server-owned %s:\n%s", noise, web.Diff)
		}
	}
	cm := objectDiff(t, res, "ConfigMap", "settings")
	if !hasLine(cm.Diff, "-  a: b") || !hasLine(cm.Diff, "+  a: c") {
		t.Errorf("ConfigMap diff lacks -a: b / +a: c:\n%s", cm.Diff)
	}
	creds := objectDiff(t, res, "Secret", "creds")
	if !hasLine(creds.Diff, "-  token: '*** (before)'") || !hasLine(creds.Diff, "+  token: '*** (after)'") {
		t.Errorf("Secret diff should show the masked key:\n%s", creds.Diff)
	}
	if old := objectDiff(t, res, "ConfigMap", "old"); old.Change != apply.ChangePrune || old.Node != "old" {
		t.Errorf("removed node: %+v, want ConfigMap old to prune", old)
	}
	if res.Created != 0 || res.Changed != 5 || res.Pruned != 1 {
		t.Errorf("counts: %d created, %d changed, %d pruned; want 0, 5, 1", res.Created, res.Changed, res.Pruned)
	}
}

// checkConflictAndImmutable: a field another manager owns, and a changed
// selector, each worded with and without the flag that lets a real apply
// through.
func checkConflictAndImmutable(t *testing.T, env map[string]string, base []string, s *diffStack, dyn dynamic.Interface, ns string) {
	t.Helper()
	hand := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": ns},
		"spec":     map[string]any{"replicas": int64(3)},
	}}
	deploys := dyn.Resource(schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}).Namespace(ns)
	if _, err := deploys.Apply(context.Background(), "web", hand, metav1.ApplyOptions{FieldManager: "ops-by-hand", Force: true}); err != nil {
		t.Fatal(err)
	}
	_, out, _ := runEnv(t, env, append(base, "--diff")...)
	if want := `conflict: a real apply would stop here: fields of another manager: .spec.replicas (owned by "ops-by-hand"); --force-conflicts would take them over`; !strings.Contains(out, want) {
		t.Errorf("conflict not flagged, want %q:\n%s", want, out)
	}
	if !strings.Contains(out, "-  replicas: 3") || !strings.Contains(out, "+  replicas: 1") {
		t.Errorf("conflict diff should show the take-over of replicas:\n%s", out)
	}
	_, out, _ = runEnv(t, env, append(base, "--diff", "--force-conflicts")...)
	if want := `would take over fields of another manager: .spec.replicas (owned by "ops-by-hand")`; !strings.Contains(out, want) {
		t.Errorf("with --force-conflicts, want %q:\n%s", want, out)
	}

	s.edit("web.yaml", "app: web", "app: web2")
	_, out, _ = runEnv(t, env, append(base, "--diff", "--force-conflicts")...)
	if want := "immutable: a real apply would stop here: cannot change spec.selector"; !strings.Contains(out, want) || !strings.Contains(out, "--recreate would delete and re-create it") {
		t.Errorf("immutable change not flagged, want %q:\n%s", want, out)
	}
	_, out, _ = runEnv(t, env, append(base, "--diff", "--force-conflicts", "--recreate")...)
	if want := "would recreate: spec.selector"; !strings.Contains(out, want) {
		t.Errorf("with --recreate, want %q:\n%s", want, out)
	}
}

// TestReconcileDiffNewKindsAndNamespaces: a custom resource whose CRD is
// in the plan but not in the cluster is new, and so is an object in a
// namespace a node creates; the diff creates neither the CRD nor the
// namespace.
func TestReconcileDiffNewKindsAndNamespaces(t *testing.T) {
	kc := clusterKubeconfig(t)
	project := "clicrd" + strconv.Itoa(os.Getpid())
	group := project + ".codex-test.dev"
	dir := t.TempDir()
	files := map[string]string{
		"services.yaml": `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: crd-diff}
spec:
  project: ` + project + `
  environments:
    dev: {runtime: non-prod, namespaceTemplate: "{{ .Project }}-dev"}
  services:
    - {name: crds, group: stateful, manifests: [crd.yaml]}
    - {name: widgets, group: internal, dependsOn: [crds], manifests: [widget.yaml]}
    - {name: extra, group: internal, manifests: [extra.yaml]}
`,
		"extra.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: " + project + "-extra}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c, namespace: " + project + "-extra}\ndata: {k: v}\n",
		"crd.yaml": `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.` + group + `}
spec:
  group: ` + group + `
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`,
		"widget.yaml": "apiVersion: " + group + "/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 1}\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := run(t, "reconcile", "--config", filepath.Join(dir, "services.yaml"), "--env", "dev", "--kubeconfig", kc, "--diff", "--exit-code")
	if code != ExitChanges {
		t.Fatalf("exit %d, want %d\n%s%s", code, ExitChanges, out, stderr)
	}
	for _, want := range []string{"+ create CustomResourceDefinition widgets." + group, "+ create Widget " + project + "-dev/w: its kind is served by a CustomResourceDefinition of the plan",
		"+ create Namespace " + project + "-extra", "+ create ConfigMap " + project + "-extra/c"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	cfg, _ := clientcmd.BuildConfigFromFlags("", kc)
	crds := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"})
	namespaces := dynamic.NewForConfigOrDie(cfg).Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"})
	if _, err := namespaces.Get(context.Background(), project+"-extra", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("--diff created the namespace (%v)", err)
		deleteNamespace(t, kc, project+"-extra")
	}
	if _, err := crds.Get(context.Background(), "widgets."+group, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("--diff created the CRD (%v)", err)
		_ = crds.Delete(context.Background(), "widgets."+group, metav1.DeleteOptions{})
	}
}

func TestExitCodeOfChanges(t *testing.T) {
	if got := ExitCode(&silentError{err: ErrChanges}); got != ExitChanges {
		t.Errorf("ExitCode(changes) = %d, want %d", got, ExitChanges)
	}
}

// TestDiffTextGolden: the text of a diff with every kind of change, worded
// without and with --force-conflicts and --recreate
// (testdata/diff/*.txt; UPDATE_GOLDEN=1 rewrites them).
func TestDiffTextGolden(t *testing.T) {
	p := &plan.Plan{Stack: "shop", Environment: "staging", Namespace: "shop-staging"}
	ref := func(kind, name string) apply.ObjectRef {
		return apply.ObjectRef{Version: "v1", Kind: kind, Namespace: "shop-staging", Name: name}
	}
	res := &apply.DiffResult{Namespace: "shop-staging", Objects: []apply.ObjectDiff{
		{Object: apply.ObjectRef{Version: "v1", Kind: "Namespace", Name: "shop-staging"}, Change: apply.ChangeNone},
		{Node: apply.SecretsNode, Object: ref("Secret", "app"), Change: apply.ChangeUpdate, SecretKeys: []string{"TOKEN"},
			Diff: "--- live\n+++ applied\n@@ -1,3 +1,3 @@\n data:\n-  TOKEN: '*** (before)'\n+  TOKEN: '*** (after)'\n"},
		{Node: "db", Group: "stateful", Object: ref("Service", "db"), Change: apply.ChangeNone},
		{Node: "db", Group: "stateful", Object: ref("StatefulSet", "db"), Change: apply.ChangeNone},
		{Node: "migrate", Group: "migrations", Object: ref("Job", "migrate"), Change: apply.ChangeRecreate, Reason: "the Job changed: a reconcile deletes it and creates it again"},
		{Node: "api", Group: "internal", Object: ref("Deployment", "api"), Change: apply.ChangeUpdate, Refused: true,
			Conflicts: []apply.FieldConflict{{Field: ".spec.replicas", Manager: "ops-by-hand"}},
			Diff:      "--- live\n+++ applied\n@@ -1,2 +1,2 @@\n spec:\n-  replicas: 3\n+  replicas: 1\n"},
		{Node: "api", Group: "internal", Object: ref("Service", "api"), Change: apply.ChangeRecreate, Refused: true, Immutable: []string{"spec.clusterIP"}},
		{Node: "api", Group: "internal", Object: ref("ConfigMap", "api"), Change: apply.ChangeCreate},
		{Node: "api", Group: "internal", Object: ref("Ingress", "bad"), Change: apply.ChangeFail, Err: "Ingress.networking.k8s.io \"bad\" is invalid"},
	}, Prune: []apply.ObjectDiff{
		{Node: "old", Group: "internal", Object: ref("ConfigMap", "old"), Change: apply.ChangePrune},
		{Node: "db", Group: "stateful", Object: ref("PersistentVolumeClaim", "data"), Change: apply.ChangeKeep, Reason: "kept unless annotated codex-k8s.dev/prune=allow"},
	}, Created: 1, Changed: 4, Unchanged: 3, Pruned: 1, Failed: 1}
	for name, f := range map[string]diffFlags{"plain": {}, "forced": {force: true, recreate: true}} {
		var b strings.Builder
		if err := writeDiffText(&b, p, "https://127.0.0.1:6443", res, f); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join("testdata", "diff", name+".txt")
		if os.Getenv("UPDATE_GOLDEN") != "" {
			_ = os.MkdirAll(filepath.Dir(path), 0o755)
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
		}
		if b.String() != string(want) {
			t.Errorf("%s differs from %s:\n%s", name, path, b.String())
		}
	}
}
