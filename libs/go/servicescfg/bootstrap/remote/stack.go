package remote

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// DefaultKubeconfig is where the cluster's kubeconfig is on the server when
// spec.bootstrap.kubeconfig does not say (k3s's).
const DefaultKubeconfig = "/etc/rancher/k3s/k3s.yaml"

// KubeconfigOf is the server path of the cluster's kubeconfig.
func KubeconfigOf(s *stack.Stack) string {
	if s.Spec.Bootstrap != nil && s.Spec.Bootstrap.Kubeconfig != "" {
		return s.Spec.Bootstrap.Kubeconfig
	}
	return DefaultKubeconfig
}

// StepsOf turns the rendered scripts into the steps install runs: each
// with its declared variables (secret ones masked in output), its files and
// its timeout.
func StepsOf(s *stack.Stack, scripts []bootstrap.Script, values *config.Values) ([]Step, error) {
	if s.Spec.Bootstrap == nil {
		return nil, nil
	}
	rendered := map[string][]byte{}
	for _, sc := range scripts {
		rendered[sc.Step] = sc.Data
	}
	secret := map[string]bool{}
	for _, v := range s.Spec.Bootstrap.Variables {
		secret[v.Name] = v.Secret
	}
	var out []Step
	for _, st := range s.Spec.Bootstrap.Steps {
		data, ok := rendered[st.Name]
		if !ok {
			return nil, fmt.Errorf("bootstrap step %s was not rendered", st.Name)
		}
		rs := Step{Name: st.Name, Script: data, Timeout: st.Timeout.Duration}
		for _, name := range st.Env {
			val, _ := values.Get(name)
			rs.Vars = append(rs.Vars, Var{Name: name, Value: val, Secret: secret[name]})
		}
		for _, f := range st.Files {
			local := filepath.Join(s.Root, filepath.FromSlash(f))
			fi, err := os.Stat(local)
			if err != nil {
				return nil, fmt.Errorf("bootstrap step %s: %w", st.Name, err)
			}
			rs.Files = append(rs.Files, File{Name: path.Base(f), Mode: fi.Mode().Perm(), Path: local})
		}
		out = append(out, rs)
	}
	return out, nil
}

// TargetValues reads the SSH target from the variables spec.bootstrap.target
// names: set holds the values the operator gave (config file or
// environment), defaults the declared defaults, so that the SSH client
// configuration can come between them (see TargetSources).
func TargetValues(s *stack.Stack, values *config.Values) (set, defaults Target, err error) {
	if s.Spec.Bootstrap == nil || s.Spec.Bootstrap.Target == nil {
		return set, defaults, nil
	}
	t := s.Spec.Bootstrap.Target
	for _, f := range []struct {
		name string
		put  func(*Target, string) error
	}{
		{t.Host, func(r *Target, v string) error { r.Host = v; return nil }},
		{t.User, func(r *Target, v string) error { r.User = v; return nil }},
		{t.IdentityFile, func(r *Target, v string) error { r.IdentityFiles = []string{v}; return nil }},
		{t.Port, func(r *Target, v string) error {
			p, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("SSH port %s=%q is not a number", t.Port, v)
			}
			r.Port = p
			return nil
		}},
	} {
		if f.name == "" {
			continue
		}
		v, ok := values.Get(f.name)
		if !ok || v == "" {
			continue
		}
		dst := &set
		if values.Source(f.name) == config.SourceDefault {
			dst = &defaults
		}
		if err := f.put(dst, v); err != nil {
			return Target{}, Target{}, err
		}
	}
	return set, defaults, nil
}
