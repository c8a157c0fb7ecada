package apply_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/test/clustertest"
)

// slotDeployerRole is the platform stack's ClusterRole bound in each slot.
const slotDeployerRole = "codex-k8s-slot-deployer"

// onlyNode is p reduced to one node, with no Secrets: what a test needs of
// a large stack.
func onlyNode(t *testing.T, p *plan.Plan, name string) *plan.Plan {
	t.Helper()
	sub := *p
	sub.Secrets = nil
	sub.Nodes = nil
	for _, n := range p.Nodes {
		if n.Name == name {
			one := *n
			one.After, one.Stage, one.Level = nil, 0, 0
			sub.Nodes = []*plan.Node{&one}
		}
	}
	if sub.Nodes == nil {
		t.Fatalf("plan %s has no node %s", p.Environment, name)
	}
	return &sub
}

// cleanupClusterScoped deletes, when the test ends, the cluster-scoped
// objects of p named after its namespace (those one environment owns; a
// ClusterRole every environment shares stays).
func cleanupClusterScoped(t *testing.T, c *apply.Clients, p *plan.Plan) {
	t.Helper()
	t.Cleanup(func() {
		for _, n := range p.Nodes {
			for _, o := range n.Objects {
				if o.Namespace != "" || !strings.HasPrefix(o.Name, p.Namespace+"-") {
					continue
				}
				m, err := c.Mapper.RESTMapping(o.Object.GroupVersionKind().GroupKind(), o.Object.GroupVersionKind().Version)
				if err != nil {
					t.Logf("cleanup %s %s: %v", o.Kind, o.Name, err)
					continue
				}
				err = c.Dynamic.Resource(m.Resource).Delete(context.Background(), o.Name, metav1.DeleteOptions{})
				if err != nil && !apierrors.IsNotFound(err) {
					t.Logf("cleanup %s %s: %v", o.Kind, o.Name, err)
				}
			}
		}
	})
}

// asServiceAccount is cfg impersonating a ServiceAccount, with the groups
// the API server gives its tokens.
func asServiceAccount(cfg *rest.Config, namespace, name string) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + namespace + ":" + name,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
	return out
}

// TestWorkerSlotRBAC deploys the platform worker's slot rights (the
// worker-slots node of services.yaml) and proves their limits on the real
// API server: SubjectAccessReviews of what the worker's ServiceAccount can
// and cannot do, then, as that ServiceAccount, a platform ai-slot deployed
// and deleted through the library while the admission policy refuses
// every namespace that is not one of its stack's slots.
func TestWorkerSlotRBAC(t *testing.T) {
	cfg := testCluster(t)
	admin, err := apply.NewClients(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prefix := uniquePrefix(t)
	path := filepath.Join(repoRoot, "services.yaml")
	dev, values := loadPlan(t, path, "dev", "", prefix, nil)
	rights := onlyNode(t, dev, "worker-slots")
	cleanup(t, cfg, dev.Namespace)
	cleanupClusterScoped(t, admin, rights)
	if _, err := apply.ReconcileWith(ctx, admin, rights, apply.Options{Values: values, Holder: "test"}); err != nil {
		t.Fatalf("reconcile worker-slots: %v", err)
	}
	worker := rbacv1.Subject{Kind: "ServiceAccount", Name: "worker", Namespace: dev.Namespace}
	wcfg := asServiceAccount(cfg, dev.Namespace, "worker")
	wc, err := apply.NewClients(wcfg)
	if err != nil {
		t.Fatal(err)
	}

	slot, slotValues := loadPlan(t, path, "ai-slot", "7", prefix, nil)
	cleanup(t, cfg, slot.Namespace)
	victim := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-not-a-slot", Labels: map[string]string{"codex-k8s.dev/stack": "codex-k8s"}}}
	if _, err := admin.Kube.CoreV1().Namespaces().Create(ctx, victim, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	cleanup(t, cfg, victim.Name)

	t.Run("access reviews", func(t *testing.T) {
		checkAccess(t, admin, worker, []access{
			{true, "create", "", "namespaces", "", ""},
			{true, "delete", "", "namespaces", "", ""},
			{true, "bind", "rbac.authorization.k8s.io", "clusterroles", "", slotDeployerRole},
			{true, "create", "rbac.authorization.k8s.io", "rolebindings", "any-namespace", ""},
			{false, "bind", "rbac.authorization.k8s.io", "clusterroles", "", "cluster-admin"},
			{false, "escalate", "rbac.authorization.k8s.io", "clusterroles", "", slotDeployerRole},
			{false, "create", "rbac.authorization.k8s.io", "clusterroles", "", ""},
			{false, "create", "rbac.authorization.k8s.io", "clusterrolebindings", "", ""},
			{false, "create", "apps", "deployments", "kube-system", ""},
			{false, "get", "", "secrets", "kube-system", ""},
			{false, "delete", "", "nodes", "", ""},
			{false, "create", "apps", "deployments", slot.Namespace, ""}, // before the slot's binding
		})
	})

	// The admission plugin learns of the policy through a watch: wait for
	// it with dry-run deletions, which it judges but never carries out.
	const refusal = "the worker may create, change and delete only namespaces labelled as slots of stack codex-k8s"
	clustertest.WaitFor(t, 30*time.Second, "the worker's admission policy", func(ctx context.Context) (bool, error) {
		err := wc.Kube.CoreV1().Namespaces().Delete(ctx, victim.Name, metav1.DeleteOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil && strings.Contains(err.Error(), refusal), nil
	})

	t.Run("the policy refuses namespaces that are not slots", func(t *testing.T) {
		err := wc.Kube.CoreV1().Namespaces().Delete(ctx, victim.Name, metav1.DeleteOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refusal) || !strings.Contains(err.Error(), ": "+victim.Name+" is not one") {
			t.Errorf("delete of an unlabelled namespace as the worker: %v", err)
		}
		if ns, err := admin.Kube.CoreV1().Namespaces().Get(ctx, victim.Name, metav1.GetOptions{}); err != nil || ns.DeletionTimestamp != nil {
			t.Errorf("the namespace after the refused delete: %v", err)
		}
		_, err = wc.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: prefix + "-plain"}}, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refusal) {
			t.Errorf("create of an unlabelled namespace as the worker: %v", err)
		}
		relabel := `{"metadata":{"labels":{"app.kubernetes.io/managed-by":"codex-bootstrap","codex-k8s.dev/slot":"9"}}}`
		_, err = wc.Kube.CoreV1().Namespaces().Patch(ctx, victim.Name, types.MergePatchType, []byte(relabel), metav1.PatchOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), refusal) {
			t.Errorf("relabelling a namespace as a slot as the worker: %v", err)
		}
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "deployer", Namespace: victim.Name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: slotDeployerRole},
			Subjects:   []rbacv1.Subject{worker},
		}
		_, err = wc.Kube.RbacV1().RoleBindings(victim.Name).Create(ctx, rb, metav1.CreateOptions{})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "the worker may bind roles only in slot namespaces of stack codex-k8s: "+victim.Name) {
			t.Errorf("binding the deployer role outside a slot as the worker: %v", err)
		}
	})

	t.Run("the worker deploys and deletes a slot", func(t *testing.T) {
		opts := apply.Options{Values: slotValues, Holder: "worker", SlotDeployer: &apply.SlotDeployer{ClusterRole: slotDeployerRole, Subject: worker}}
		if _, err := apply.ReconcileWith(ctx, wc, slot, opts); err != nil {
			t.Fatalf("reconcile ai-slot 7 as the worker: %v", err)
		}
		checkAccess(t, admin, worker, []access{
			{true, "create", "apps", "deployments", slot.Namespace, ""},
			{false, "create", "apps", "deployments", victim.Name, ""},
		})
		// cluster-admin cannot be bound, not even inside the slot.
		rb := &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "admin", Namespace: slot.Namespace},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "cluster-admin"},
			Subjects:   []rbacv1.Subject{worker},
		}
		if _, err := wc.Kube.RbacV1().RoleBindings(slot.Namespace).Create(ctx, rb, metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Errorf("binding cluster-admin in the slot as the worker: %v", err)
		}
		again, err := apply.ReconcileWith(ctx, wc, slot, opts)
		if err != nil || !again.NoChanges() {
			t.Errorf("second reconcile as the worker: %v, changes %+v", err, again)
		}
		res, err := apply.DeleteSlotWith(ctx, wc, slot, apply.SlotOptions{Wait: true, Timeout: 2 * time.Minute})
		if err != nil || len(res.Deleted) != 1 {
			t.Fatalf("delete ai-slot 7 as the worker: %+v, %v", res, err)
		}
	})
}

// access is one question to the authorizer about the worker.
type access struct {
	allowed                                bool
	verb, group, resource, namespace, name string
}

func checkAccess(t *testing.T, c *apply.Clients, who rbacv1.Subject, want []access) {
	t.Helper()
	user := "system:serviceaccount:" + who.Namespace + ":" + who.Name
	for _, a := range want {
		review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:   user,
			Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + who.Namespace, "system:authenticated"},
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Namespace: a.namespace, Name: a.name,
			},
		}}
		r, err := c.Kube.AuthorizationV1().SubjectAccessReviews().Create(context.Background(), review, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status.Allowed != a.allowed {
			t.Errorf("%s %s %s.%s in %q named %q: allowed %v, want %v (%s)", user, a.verb, a.resource, a.group, a.namespace, a.name, r.Status.Allowed, a.allowed, r.Status.Reason)
		}
	}
}
