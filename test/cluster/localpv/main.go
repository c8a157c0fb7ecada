// Command localpv provisions `local` PersistentVolumes on the real node of
// the test cluster (test/cluster/cluster.sh runs it next to the kubelet):
// for every claim of its StorageClass that the scheduler placed on the node
// (WaitForFirstConsumer), a folder under -dir and a PersistentVolume bound
// to the claim; when a claim goes, its folder and volume go too.
//
// Local volumes, unlike hostPath ones, honour a pod's fsGroup: the kubelet
// gives the folder to the group, so a pod running as the declared uid/gid
// can write to it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

// Provisioner is the name StorageClasses give to ask for these volumes.
const Provisioner = "codex-k8s.dev/real-node-local"

const (
	selectedNodeAnnotation  = "volume.kubernetes.io/selected-node"
	provisionedByAnnotation = "pv.kubernetes.io/provisioned-by"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "localpv:", err)
		stop()
		os.Exit(1)
	}
}

type provisioner struct {
	client kubernetes.Interface
	node   string
	dir    string
	pvcs   corelisters.PersistentVolumeClaimLister
	pvs    corelisters.PersistentVolumeLister
	sc     func(name string) (string, bool) // class -> provisioner
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("localpv", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig of the cluster (required)")
	node := fs.String("node", "", "name of the node whose volumes are made here (required)")
	dir := fs.String("dir", "", "folder that holds the volumes (required)")
	health := fs.String("health", "127.0.0.1:0", "address of the /healthz endpoint")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *kubeconfig == "" || *node == "" || *dir == "" {
		return errors.New("usage: localpv -kubeconfig FILE -node NAME -dir DIR [-health ADDR]")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", *kubeconfig, err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return err
	}
	factory := informers.NewSharedInformerFactory(client, 10*time.Minute)
	p := &provisioner{
		client: client, node: *node, dir: *dir,
		pvcs: factory.Core().V1().PersistentVolumeClaims().Lister(),
		pvs:  factory.Core().V1().PersistentVolumes().Lister(),
	}
	classes := factory.Storage().V1().StorageClasses().Lister()
	p.sc = func(name string) (string, bool) {
		c, err := classes.Get(name)
		if err != nil {
			return "", false
		}
		return c.Provisioner, true
	}
	kick := make(chan struct{}, 1)
	handler := cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify(kick) },
		UpdateFunc: func(any, any) { notify(kick) },
		DeleteFunc: func(any) { notify(kick) },
	}
	for _, inf := range []cache.SharedIndexInformer{
		factory.Core().V1().PersistentVolumeClaims().Informer(),
		factory.Core().V1().PersistentVolumes().Informer(),
		factory.Storage().V1().StorageClasses().Informer(),
	} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return err
		}
	}
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("the cache of %v did not sync", typ)
		}
	}
	if err := serveHealth(ctx, *health); err != nil {
		return err
	}
	fmt.Printf("localpv: provisioning %s volumes of node %s in %s\n", Provisioner, *node, *dir)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			p.reconcile(ctx)
		}
	}
}

func notify(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

func serveHealth(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() { _ = srv.Serve(ln) }()
	return nil
}

// reconcile makes volumes for waiting claims and removes released ones. A
// failure is logged and tried again at the next change (or resync).
func (p *provisioner) reconcile(ctx context.Context) {
	claims, err := p.pvcs.List(labels.Everything())
	if err != nil {
		fmt.Fprintln(os.Stderr, "localpv: listing claims:", err)
		return
	}
	for _, c := range claims {
		if err := p.provision(ctx, c); err != nil {
			fmt.Fprintf(os.Stderr, "localpv: claim %s/%s: %v\n", c.Namespace, c.Name, err)
		}
	}
	vols, err := p.pvs.List(labels.Everything())
	if err != nil {
		fmt.Fprintln(os.Stderr, "localpv: listing volumes:", err)
		return
	}
	for _, v := range vols {
		if err := p.release(ctx, v); err != nil {
			fmt.Fprintf(os.Stderr, "localpv: volume %s: %v\n", v.Name, err)
		}
	}
}

func (p *provisioner) provision(ctx context.Context, c *corev1.PersistentVolumeClaim) error {
	if c.Status.Phase != corev1.ClaimPending || c.Spec.VolumeName != "" || c.DeletionTimestamp != nil ||
		c.Annotations[selectedNodeAnnotation] != p.node || c.Spec.StorageClassName == nil {
		return nil
	}
	if prov, ok := p.sc(*c.Spec.StorageClassName); !ok || prov != Provisioner {
		return nil
	}
	name := "real-node-" + string(c.UID)
	if _, err := p.pvs.Get(name); err == nil {
		return nil
	}
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(path, 0o755); err != nil {
		return err
	}
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: map[string]string{provisionedByAnnotation: Provisioner}},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimDelete,
			StorageClassName:              *c.Spec.StorageClassName,
			VolumeMode:                    c.Spec.VolumeMode,
			PersistentVolumeSource:        corev1.PersistentVolumeSource{Local: &corev1.LocalVolumeSource{Path: path}},
			ClaimRef: &corev1.ObjectReference{
				Kind: "PersistentVolumeClaim", APIVersion: "v1",
				Namespace: c.Namespace, Name: c.Name, UID: c.UID,
			},
			NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{
					Key: "kubernetes.io/hostname", Operator: corev1.NodeSelectorOpIn, Values: []string{p.node},
				}}}},
			}},
		},
	}
	_, err := p.client.CoreV1().PersistentVolumes().Create(ctx, pv, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating volume %s: %w", name, err)
	}
	fmt.Printf("localpv: volume %s at %s for claim %s/%s\n", name, path, c.Namespace, c.Name)
	return nil
}

// release removes the folder and the volume of a claim that is gone.
func (p *provisioner) release(ctx context.Context, v *corev1.PersistentVolume) error {
	if v.Annotations[provisionedByAnnotation] != Provisioner || v.DeletionTimestamp != nil ||
		(v.Status.Phase != corev1.VolumeReleased && v.Status.Phase != corev1.VolumeFailed) {
		return nil
	}
	if v.Spec.Local == nil || !strings.HasPrefix(v.Spec.Local.Path, filepath.Clean(p.dir)+string(filepath.Separator)) {
		return nil // not a folder of ours: leave it alone
	}
	if err := os.RemoveAll(v.Spec.Local.Path); err != nil {
		return err
	}
	err := p.client.CoreV1().PersistentVolumes().Delete(ctx, v.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting: %w", err)
	}
	fmt.Printf("localpv: volume %s released and removed\n", v.Name)
	return nil
}
