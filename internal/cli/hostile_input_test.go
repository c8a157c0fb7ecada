package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Hostile stacks against the input side of validate and reconcile --dry-run
// (issue 9): each test holds the input that once did harm. docs/testing.md
// lists them with their outcome.

// hostileStack is a minimal valid stack with one service whose manifest is
// m/a.yaml; extra is appended to its spec.
func hostileStack(extra string) string {
	return "apiVersion: codex-k8s.dev/v1alpha1\nkind: ServiceStack\nmetadata: {name: n}\nspec:\n  project: n\n" +
		"  environments:\n    dev: {runtime: non-prod, namespaceTemplate: n-dev}\n" +
		"  services:\n    - {name: a, manifests: [m/a.yaml]}\n" + extra
}

// runEnv is run with a process environment of the test's own.
func runEnv(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO:        IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
	}
	code := Run(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

// TestHostEnvironmentStaysOutOfConfig: a stack that declares a bootstrap
// variable named after a host variable cannot print its value; the operator
// sets a variable through CODEX_VAR_NAME only.
func TestHostEnvironmentStaysOutOfConfig(t *testing.T) {
	root := writeTree(t, map[string]string{
		"services.yaml": hostileStack("  bootstrap:\n    variables:\n      - {name: AWS_SECRET_ACCESS_KEY}\n      - {name: DOMAIN}\n"),
		"m/a.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n" +
			"data:\n  stolen: {{ index .Config \"AWS_SECRET_ACCESS_KEY\" | default \"none\" | quote }}\n" +
			"  domain: {{ index .Config \"DOMAIN\" | default \"none\" | quote }}\n",
	})
	env := map[string]string{"AWS_SECRET_ACCESS_KEY": "host-secret-value", "CODEX_VAR_DOMAIN": "codex.example"}
	dir := filepath.Join(t.TempDir(), "out")
	code, out, stderr := runEnv(t, env, "reconcile", "--config", filepath.Join(root, "services.yaml"), "--env", "dev", "--dry-run", "-o", "json", "--output-dir", dir)
	if code != 0 {
		t.Fatalf("exit %d\n%s", code, stderr)
	}
	written, err := os.ReadFile(filepath.Join(dir, "01-a", "a.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, text := range []string{out, stderr, string(written)} {
		if strings.Contains(text, "host-secret-value") {
			t.Fatalf("the host variable reached the output:\n%s", text)
		}
	}
	if !strings.Contains(string(written), `stolen: "none"`) || !strings.Contains(string(written), `domain: "codex.example"`) {
		t.Errorf("rendered:\n%s", written)
	}
}
