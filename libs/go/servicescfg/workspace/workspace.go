// Package workspace fills an environment's shared workspace volume and
// lets other pods use it: the sources a developer syncs from a laptop
// (Syncer), and the Volume, mount and security context that agent-run
// pods of a slot put on themselves (PodMount) to share it with the
// slot's hot-reloading services under the same uid, gid and fsGroup.
//
// Sync goes through the Kubernetes API only: a helper pod of the engine's
// runs on the claim's node as the workspace owner, and tar streams go to
// it over exec, as kubectl cp and DevSpace do. Like the rest of the
// library it never prints.
package workspace

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/render"
)

var (
	// ErrProduction: a production environment has no workspace, and sync
	// never writes into one.
	ErrProduction = errors.New("production environment")
	// ErrNoWorkspace: the environment's runtime declares no workspace.
	ErrNoWorkspace = errors.New("no workspace")
)

// VolumeName is the name of the workspace volume in pods built with
// PodMount and in the helper pod.
const VolumeName = "workspace"

// Spec is an environment's workspace as a pod needs it.
type Spec struct {
	Namespace string
	ClaimName string
	MountPath string
	UID       int64
	GID       int64
	FSGroup   int64
	// Source is the git repository that fills an empty workspace (Git
	// empty when none).
	Source render.WorkspaceSource
}

// FromPlan returns the workspace of a planned environment. It refuses a
// production environment (see stack.IsProduction) and an environment
// without a workspace.
func FromPlan(p *plan.Plan) (Spec, error) {
	if p.Production {
		return Spec{}, fmt.Errorf("environment %s: %w: it runs built images and has no workspace", p.Environment, ErrProduction)
	}
	spec, ok := SpecOf(p)
	if !ok {
		return Spec{}, fmt.Errorf("environment %s (runtime %s): %w: declare spec.runtime.%s.workspace", p.Environment, p.Runtime, ErrNoWorkspace, p.Runtime)
	}
	return spec, nil
}

// SpecOf returns the workspace a plan declares, false when none.
func SpecOf(p *plan.Plan) (Spec, bool) {
	w := p.Context.Runtime.Workspace
	if !w.Enabled {
		return Spec{}, false
	}
	return Spec{
		Namespace: p.Namespace,
		ClaimName: w.ClaimName,
		MountPath: w.MountPath,
		UID:       w.UID,
		GID:       w.GID,
		FSGroup:   w.FSGroup,
		Source:    w.Source,
	}, true
}

// Mount is what a pod needs to work in the workspace as its owner.
type Mount struct {
	Volume      corev1.Volume
	VolumeMount corev1.VolumeMount
	// PodSecurityContext goes on the pod (fsGroup, uid and gid);
	// SecurityContext on each container that touches the workspace.
	PodSecurityContext *corev1.PodSecurityContext
	SecurityContext    *corev1.SecurityContext
}

// PodMount returns the workspace volume, its mount and the security
// contexts that make a pod write files the slot's services can read and
// rebuild from: the same claim, path, uid, gid and fsGroup as theirs. A
// platform worker puts them on the agent-run pods of a slot.
func PodMount(s Spec) Mount {
	nonRoot := s.UID != 0
	noEscalation := false
	return Mount{
		Volume: corev1.Volume{
			Name:         VolumeName,
			VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: s.ClaimName}},
		},
		VolumeMount: corev1.VolumeMount{Name: VolumeName, MountPath: s.MountPath},
		PodSecurityContext: &corev1.PodSecurityContext{
			RunAsUser:    new(s.UID),
			RunAsGroup:   new(s.GID),
			FSGroup:      new(s.FSGroup),
			RunAsNonRoot: &nonRoot,
		},
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                new(s.UID),
			RunAsGroup:               new(s.GID),
			AllowPrivilegeEscalation: &noEscalation,
		},
	}
}

// Apply puts the mount on a pod spec: the volume (replacing one of the
// same name), the security contexts, and the mount on every container.
func (m Mount) Apply(spec *corev1.PodSpec) {
	vols := spec.Volumes[:0:0]
	for _, v := range spec.Volumes {
		if v.Name != m.Volume.Name {
			vols = append(vols, v)
		}
	}
	spec.Volumes = append(vols, m.Volume)
	spec.SecurityContext = m.PodSecurityContext.DeepCopy()
	for i := range spec.Containers {
		c := &spec.Containers[i]
		c.SecurityContext = m.SecurityContext.DeepCopy()
		c.VolumeMounts = append(c.VolumeMounts, m.VolumeMount)
	}
}
