package workspace

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

const (
	// DefaultGitImage runs the clone of a workspace source.
	DefaultGitImage = "docker.io/alpine/git:2.47.2"
	// cloneContainer is the helper's init container that clones.
	cloneContainer = "clone"
	// credentialsDir is where the credentials Secret is mounted.
	credentialsDir = "/var/run/codex-git"
)

// cloneScript fills the workspace ($1) from the repository ($2) at a ref
// ($3, empty for HEAD), unless it already holds sources (a clone or a
// sync). The credentials go to git through a credential helper that reads
// the mounted Secret's files when git asks: the token is in no argument,
// no environment variable and no log line.
const cloneScript = `set -e
cd "$1"
if [ -e .git ] || [ -e ` + manifestFile + ` ]; then
  echo "workspace has sources already: not cloning"
  exit 0
fi
ref="${3:-HEAD}"
git init -q --template= .
if ! { git remote add origin "$2" && git fetch -q origin "$ref" && git checkout -q FETCH_HEAD; }; then
  rm -rf .git # the next attempt starts over
  exit 1
fi
echo "cloned $2 at $ref ($(git rev-parse --short HEAD))"
`

// credentialHelper answers git's "get" with the mounted Secret's username
// (default x-access-token) and token.
const credentialHelper = `!f() { test "$1" = get || exit 0; echo "username=$(cat ` + credentialsDir + `/username 2>/dev/null || echo x-access-token)"; echo "password=$(cat ` + credentialsDir + `/token)"; }; f`

// cloneInit is the helper's init container that clones the source.
func cloneInit(s Spec, m Mount) corev1.Container {
	img := gitImage(s)
	// The volume's root belongs to root (its group is fsGroup): git would
	// call the repository's ownership dubious. Configuration goes through
	// GIT_CONFIG_* variables: it holds no secret, only where to read it.
	config := [][2]string{{"safe.directory", s.MountPath}}
	if s.Source.CredentialsSecret != "" {
		config = append(config, [2]string{"credential.helper", credentialHelper})
	}
	env := []corev1.EnvVar{
		{Name: "HOME", Value: "/tmp"},
		{Name: "GIT_TERMINAL_PROMPT", Value: "0"},
		{Name: "GIT_CONFIG_COUNT", Value: strconv.Itoa(len(config))},
	}
	for i, kv := range config {
		env = append(env,
			corev1.EnvVar{Name: fmt.Sprintf("GIT_CONFIG_KEY_%d", i), Value: kv[0]},
			corev1.EnvVar{Name: fmt.Sprintf("GIT_CONFIG_VALUE_%d", i), Value: kv[1]})
	}
	c := corev1.Container{
		Name:            cloneContainer,
		Image:           img,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", cloneScript, "clone", s.MountPath, s.Source.Git, s.Source.Ref},
		Env:             env,
		SecurityContext: m.SecurityContext.DeepCopy(),
		VolumeMounts:    []corev1.VolumeMount{m.VolumeMount},
	}
	if s.Source.CredentialsSecret != "" {
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "git-credentials", MountPath: credentialsDir, ReadOnly: true})
	}
	return c
}

// withSource adds the clone to a helper pod.
func withSource(pod *corev1.Pod, s Spec) {
	if s.Source.Git == "" {
		return
	}
	pod.Spec.InitContainers = append(pod.Spec.InitContainers, cloneInit(s, PodMount(s)))
	if name := s.Source.CredentialsSecret; name != "" {
		mode := int32(0o440)
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "git-credentials", VolumeSource: corev1.VolumeSource{
			Secret: &corev1.SecretVolumeSource{SecretName: name, DefaultMode: &mode},
		}})
	}
}

// Scheduling is where pods that mount a claim may run, taken from the
// pod templates of a plan: the helper pod that fills a workspace before
// the services start goes through the scheduler with their constraints,
// so the volume it binds first lands on a node they can use.
type Scheduling struct {
	NodeSelector map[string]string
	Tolerations  []corev1.Toleration
	Affinity     *corev1.Affinity
}

// SchedulingFor returns the scheduling of the first pod template in the
// plan that mounts the claim (zero when none does).
func SchedulingFor(p *plan.Plan, claim string) Scheduling {
	for _, n := range p.Nodes {
		for _, o := range n.Objects {
			if o.Object == nil {
				continue
			}
			spec, ok := podSpecOf(o.Object)
			if !ok {
				continue
			}
			for _, v := range spec.Volumes {
				if v.PersistentVolumeClaim != nil && v.PersistentVolumeClaim.ClaimName == claim {
					return Scheduling{NodeSelector: spec.NodeSelector, Tolerations: spec.Tolerations, Affinity: spec.Affinity}
				}
			}
		}
	}
	return Scheduling{}
}

// podSpecOf reads the pod spec of a Pod or of a workload's pod template.
func podSpecOf(u *unstructured.Unstructured) (*corev1.PodSpec, bool) {
	path := []string{"spec", "template", "spec"}
	switch u.GetKind() {
	case "Pod":
		path = []string{"spec"}
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
	default:
		return nil, false
	}
	raw, ok, err := unstructured.NestedMap(u.Object, path...)
	if !ok || err != nil {
		return nil, false
	}
	var spec corev1.PodSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &spec); err != nil {
		return nil, false
	}
	return &spec, true
}

// gitImage is the image that runs git for s's source.
func gitImage(s Spec) string {
	if s.Source.Image != "" {
		return s.Source.Image
	}
	return DefaultGitImage
}

// Populate fills an empty workspace from its git source: it starts the
// helper pod (on the source's git image) with the clone as its init
// container, through the scheduler with sched (see SchedulingFor) when the
// claim is on no node yet, and waits until the clone is done. A workspace
// that holds sources already is left as it is. It does nothing for a
// workspace without a source.
func Populate(ctx context.Context, c kubernetes.Interface, s Spec, sched Scheduling) error {
	if s.Source.Git == "" {
		return nil
	}
	node, placed, err := claimNode(ctx, c, s.Namespace, s.ClaimName)
	if err != nil {
		return err
	}
	pod := HelperPod(s, gitImage(s), node)
	withSource(pod, s)
	if !placed {
		pod.Spec.NodeSelector, pod.Spec.Affinity = sched.NodeSelector, sched.Affinity
		pod.Spec.Tolerations = sched.Tolerations
	}
	cloned := func(p *corev1.Pod) bool { return len(p.Spec.InitContainers) > 0 && running(p) } // by an earlier reconcile
	created, kept, err := replaceHelper(ctx, c, s.Namespace, cloned, func() (*corev1.Pod, error) { return pod, nil })
	if err != nil || kept {
		return err
	}
	if _, err := waitRunning(ctx, c, created); err != nil {
		return cloneFailure(ctx, c, s, err)
	}
	return nil
}

// cloneFailure adds the clone's own words (git's last lines; never a
// credential, which git does not print) to a helper that did not start.
func cloneFailure(ctx context.Context, c kubernetes.Interface, s Spec, err error) error {
	var raw []byte
	// The kubelet may already be running the clone again: then its words
	// are the previous run's.
	for _, previous := range []bool{false, true} {
		out, lerr := c.CoreV1().Pods(s.Namespace).GetLogs(HelperName, &corev1.PodLogOptions{Container: cloneContainer, Previous: previous}).DoRaw(ctx)
		if out = bytes.TrimSpace(out); lerr == nil && len(out) > 0 {
			raw = out
			break
		}
	}
	if len(raw) == 0 {
		return fmt.Errorf("cloning %s into the workspace: %w", s.Source.Git, err)
	}
	lines := strings.Split(string(raw), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return fmt.Errorf("cloning %s into the workspace: %w (git: %s)", s.Source.Git, err, strings.Join(lines, "; "))
}
