package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// deployOverSSH reads the cluster's kubeconfig from the server and
// reconciles the environment with client-go dialling the API through the
// SSH connection: nothing listens locally, no port opens on the server.
func deployOverSSH(ctx context.Context, opts *InstallOptions, ip *installPlan, client *remote.Client, events apply.Observer) error {
	cfg, raw, err := sshRESTConfig(ctx, client, remote.KubeconfigOf(ip.prj.Stack()))
	if err != nil {
		return err
	}
	if opts.KubeconfigOut != "" {
		if err := writeKubeconfigOut(opts, raw, client.Target()); err != nil {
			return err
		}
	}
	ropts := &ReconcileOptions{
		IO: opts.IO, Prompter: opts.Prompter, LookupEnv: opts.LookupEnv, Factory: opts.Factory,
		ConfigPath: opts.ConfigPath, Env: opts.Env, Slot: opts.Slot, Yes: opts.Yes,
		Parallel: apply.DefaultParallel, Events: events,
		RESTConfig: func() (*rest.Config, error) { return cfg, nil },
	}
	return runApply(ctx, ropts, ip.plan, ip.values)
}

// reconcileOverSSH connects to the server of --ssh and points the
// reconcile at its cluster through that connection; closeSSH ends it.
func reconcileOverSSH(ctx context.Context, opts *ReconcileOptions, s *stack.Stack, values *config.Values) (closeSSH func(), err error) {
	if opts.Kubeconfig != "" || opts.Context != "" {
		return nil, UsageErrorf("--ssh reads the kubeconfig on the server: drop --kubeconfig and --context")
	}
	t, err := opts.SSH.resolveTarget(opts.LookupEnv, s, values)
	if err != nil {
		return nil, err
	}
	client, err := remote.Dial(ctx, opts.SSH.dialConfig(opts.IO, opts.Prompter, opts.LookupEnv, t))
	if err != nil {
		return nil, wordInstallError(err)
	}
	cfg, _, err := sshRESTConfig(ctx, client, remote.KubeconfigOf(s))
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	opts.RESTConfig = func() (*rest.Config, error) { return cfg, nil }
	return func() { _ = client.Close() }, nil
}

// sshRESTConfig reads the kubeconfig at path on the server and makes a
// config that dials its API server from the server's side of the SSH
// connection.
func sshRESTConfig(ctx context.Context, client *remote.Client, path string) (*rest.Config, []byte, error) {
	raw, err := client.ReadFile(ctx, path)
	if err != nil {
		return nil, nil, fmt.Errorf("read the cluster's kubeconfig (did the cluster step run?): %w", err)
	}
	cfg, err := clientcmd.RESTConfigFromKubeConfig(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("kubeconfig %s on %s: %w", path, client.Target().Host, err)
	}
	cfg.Dial = client.SSH().DialContext
	return cfg, raw, nil
}

// writeKubeconfigOut writes the kubeconfig for use through an SSH tunnel:
// its server is 127.0.0.1 at the API server's port, which the printed
// ssh -L line forwards to the server's own loopback.
func writeKubeconfigOut(opts *InstallOptions, raw []byte, t remote.Target) error {
	kc, err := clientcmd.Load(raw)
	if err != nil {
		return err
	}
	port := ""
	for _, c := range kc.Clusters {
		u, err := url.Parse(c.Server)
		if err != nil {
			return fmt.Errorf("kubeconfig server %q: %w", c.Server, err)
		}
		port = u.Port()
		if port == "" {
			port = "443"
		}
		u.Host = "127.0.0.1:" + port
		c.Server = u.String()
	}
	data, err := clientcmd.Write(*kc)
	if err != nil {
		return err
	}
	if err := writeFileAtomic(opts.KubeconfigOut, data, 0o600); err != nil {
		return fmt.Errorf("write --kubeconfig-out: %w", err)
	}
	ssh := "ssh -N -L " + port + ":127.0.0.1:" + port
	if t.Port != 22 {
		ssh += " -p " + strconv.Itoa(t.Port)
	}
	fmt.Fprintf(opts.IO.Out, "kubeconfig written to %s; while this runs, it reaches the cluster:\n  %s %s@%s\n", opts.KubeconfigOut, ssh, t.User, t.Host)
	return nil
}

// writeFileAtomic writes path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(mode); err != nil {
		_ = tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
