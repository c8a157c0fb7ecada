package bootstrap_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// TestRenderedStepsAreValidBash renders the bootstrap steps of the real
// stacks, in every environment, and checks each with bash -n: what install
// uploads must at least parse.
func TestRenderedStepsAreValidBash(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash here")
	}
	values := map[string]string{ // what an operator would supply
		"CODEXK8S_SSH_HOST": "203.0.113.10", "CODEXK8S_DOMAIN": "platform.example.com",
		"CODEXK8S_GITHUB_PAT": "x", "CODEXK8S_LETSENCRYPT_EMAIL": "ops@example.com",
	}
	lookup := func(k string) (string, bool) { v, ok := values[k]; return v, ok }
	for _, path := range []string{"../../../../services.yaml", "../../../../examples/new-project/services.yaml", "../../../../internal/cli/testdata/install/services.yaml"} {
		prj, err := servicescfg.Open(path, servicescfg.Options{LookupEnv: lookup})
		if err != nil {
			t.Fatal(err)
		}
		s := prj.Stack()
		engine, err := plan.EngineFor(s)
		if err != nil {
			t.Fatal(err)
		}
		checked := 0
		for _, env := range s.EnvironmentNames() {
			target := servicescfg.Target{Env: env}
			if r, err := s.ResolveEnvironment(env); err == nil && r.Slots {
				target.Slot = "1"
			}
			p, err := prj.Plan(context.Background(), target, servicescfg.IdentityOnly())
			if err != nil {
				t.Fatalf("%s %s: %v", path, env, err)
			}
			scripts, err := bootstrap.Render(context.Background(), s, engine, p.Context)
			if err != nil {
				t.Fatalf("%s %s: %v", path, env, err)
			}
			for _, sc := range scripts {
				f := filepath.Join(t.TempDir(), "step.sh")
				if err := os.WriteFile(f, sc.Data, 0o600); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command(bash, "-n", f).CombinedOutput(); err != nil {
					t.Errorf("%s, environment %s, step %s (%s): bash -n: %v\n%s", path, env, sc.Step, sc.Path, err, out)
				}
				if sc.Step == "firewall" {
					checkFirewallRules(t, env, string(sc.Data))
				}
				checked++
			}
			if path == "../../../../services.yaml" {
				checkPlatformSteps(t, env, scripts)
			}
		}
		if checked == 0 {
			t.Errorf("%s: no step checked", path)
		}
		t.Logf("%s: %d rendered steps checked", path, checked)
	}
}

// checkPlatformSteps: the platform's steps, in the order that keeps the
// cluster's ports private from the moment it starts.
func checkPlatformSteps(t *testing.T, env string, scripts []bootstrap.Script) {
	t.Helper()
	var names []string
	for _, sc := range scripts {
		names = append(names, sc.Step)
	}
	want := "prepare-host firewall install-k3s configure-registry install-cert-manager finalize"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("platform steps in %s: %s, want %s", env, got, want)
	}
}

// checkFirewallRules: the rendered ruleset accepts the SSH port before
// anything is dropped, hooks before kube-proxy's DNAT (NodePorts), and
// opens no TCP port but SSH, 80 and 443.
func checkFirewallRules(t *testing.T, env, script string) {
	t.Helper()
	accept := strings.Index(script, "tcp dport @public_tcp accept")
	drop := strings.Index(script, "counter drop")
	if accept < 0 || drop < 0 || accept > drop {
		t.Errorf("firewall in %s: the public ports are not accepted before the drop", env)
	}
	if !strings.Contains(script, "elements = { $ssh_ports, 80, 443 }") {
		t.Errorf("firewall in %s: public ports are not exactly SSH, 80 and 443", env)
	}
	if !strings.Contains(script, "type filter hook prerouting priority -150;") {
		t.Errorf("firewall in %s: the chain does not filter before DNAT", env)
	}
}
