package workspace

import (
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
)

var testSpec = Spec{Namespace: "shop-dev-1", ClaimName: "workspace", MountPath: "/src", UID: 1000, GID: 1001, FSGroup: 1002}

func TestPodMountGivesTheWorkspaceOwner(t *testing.T) {
	spec := corev1.PodSpec{
		Volumes:    []corev1.Volume{{Name: VolumeName}, {Name: "other"}},
		Containers: []corev1.Container{{Name: "a"}, {Name: "b"}},
	}
	PodMount(testSpec).Apply(&spec)
	if len(spec.Volumes) != 2 || spec.Volumes[1].PersistentVolumeClaim == nil || spec.Volumes[1].PersistentVolumeClaim.ClaimName != "workspace" {
		t.Fatalf("volumes: %+v", spec.Volumes)
	}
	sc := spec.SecurityContext
	if *sc.RunAsUser != 1000 || *sc.RunAsGroup != 1001 || *sc.FSGroup != 1002 || !*sc.RunAsNonRoot {
		t.Fatalf("pod security context: %+v", sc)
	}
	for _, c := range spec.Containers {
		if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/src" || *c.SecurityContext.RunAsUser != 1000 || *c.SecurityContext.AllowPrivilegeEscalation {
			t.Fatalf("container %s: %+v %+v", c.Name, c.VolumeMounts, c.SecurityContext)
		}
	}
}

// TestHelperCloneCarriesNoSecret: the clone's container gets the Secret as
// a mounted file and the helper that reads it; nothing in the pod holds a
// value of it, and the arguments are the URL, the ref and the path.
func TestHelperCloneCarriesNoSecret(t *testing.T) {
	s := testSpec
	s.Source = render.WorkspaceSource{Git: "https://git.example.com/shop.git", Ref: "main", CredentialsSecret: "git-token"}
	pod := HelperPod(s, "toolbox", "")
	withSource(pod, s)
	if len(pod.Spec.InitContainers) != 1 {
		t.Fatalf("init containers: %+v", pod.Spec.InitContainers)
	}
	c := pod.Spec.InitContainers[0]
	if got := c.Command[len(c.Command)-3:]; strings.Join(got, " ") != "/src https://git.example.com/shop.git main" {
		t.Errorf("clone arguments end with %q", got)
	}
	env := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil {
			t.Errorf("env %s comes from %+v: the token must stay in the mounted file", e.Name, e.ValueFrom)
		}
		env[e.Name] = e.Value
	}
	if env["GIT_CONFIG_COUNT"] != "2" || env["GIT_CONFIG_KEY_0"] != "safe.directory" || env["GIT_CONFIG_KEY_1"] != "credential.helper" ||
		!strings.Contains(env["GIT_CONFIG_VALUE_1"], credentialsDir+"/token") || env["GIT_TERMINAL_PROMPT"] != "0" {
		t.Errorf("git configuration: %v", env)
	}
	var secretVol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Secret != nil {
			secretVol = &pod.Spec.Volumes[i]
		}
	}
	if secretVol == nil || secretVol.Secret.SecretName != "git-token" {
		t.Fatalf("no volume of Secret git-token: %+v", pod.Spec.Volumes)
	}
	// Without credentials: no Secret, only safe.directory.
	s.Source.CredentialsSecret = ""
	pod = HelperPod(s, "toolbox", "")
	withSource(pod, s)
	b, _ := json.Marshal(pod)
	if strings.Contains(string(b), "credential.helper") || strings.Contains(string(b), "git-credentials") {
		t.Errorf("a public source gets credentials: %s", b)
	}
}

func TestSchedulingForTakesTheClaimsPods(t *testing.T) {
	obj := func(kind string, spec map[string]any) *plan.Object {
		u := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": kind, "metadata": map[string]any{"name": "x"}}}
		if kind == "Pod" {
			u.Object["spec"] = spec
		} else {
			u.Object["spec"] = map[string]any{"template": map[string]any{"spec": spec}}
		}
		return &plan.Object{Kind: kind, Object: u}
	}
	other := map[string]any{"nodeSelector": map[string]any{"disk": "ssd"}, "containers": []any{map[string]any{"name": "c"}},
		"volumes": []any{map[string]any{"name": "v", "persistentVolumeClaim": map[string]any{"claimName": "data"}}}}
	dev := map[string]any{"nodeSelector": map[string]any{"pool": "dev"}, "containers": []any{map[string]any{"name": "c"}},
		"tolerations": []any{map[string]any{"key": "pool", "operator": "Equal", "value": "dev", "effect": "NoSchedule"}},
		"volumes":     []any{map[string]any{"name": "src", "persistentVolumeClaim": map[string]any{"claimName": "workspace"}}}}
	p := &plan.Plan{Nodes: []*plan.Node{
		{Name: "db", Objects: []*plan.Object{obj("StatefulSet", other), {Kind: "Service"}}},
		{Name: "api", Objects: []*plan.Object{obj("Deployment", dev)}},
	}}
	got := SchedulingFor(p, "workspace")
	if got.NodeSelector["pool"] != "dev" || len(got.Tolerations) != 1 || got.Tolerations[0].Key != "pool" {
		t.Fatalf("SchedulingFor = %+v", got)
	}
	if got := SchedulingFor(p, "none"); got.NodeSelector != nil || got.Tolerations != nil {
		t.Fatalf("SchedulingFor of an unused claim = %+v", got)
	}
}
