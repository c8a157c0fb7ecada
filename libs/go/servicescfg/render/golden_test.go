package render

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// TestGolden renders the stack under testdata/stack and compares the output
// with testdata/golden; `go test ./libs/go/servicescfg/render -update`
// rewrites the golden files.
func TestGolden(t *testing.T) {
	root, err := filepath.Abs("testdata/stack")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(root, []string{"deploy/partials/*.tpl"})
	if err != nil {
		t.Fatal(err)
	}
	dev := testContext()
	dev.Service.Vars = map[string]string{"port": "8081"}
	slot := testContext()
	slot.Env, slot.Slot, slot.Namespace = "ai-slot", "7", "codex-k8s-dev-7"
	prod := testContext()
	prod.Env, prod.Namespace = "prod", "codex-k8s-prod"
	prod.Runtime = Runtime{Profile: "prod"}
	prod.Vars = map[string]string{}
	script := testContext()
	script.Service = nil

	prompt, err := os.ReadFile("testdata/stack/prompts/domain.txt.tpl")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		golden string
		file   string
		data   Context
	}{
		{"deployment-dev.yaml", "deploy/base/api-gateway/deployment.yaml.tpl", dev},
		{"deployment-ai-slot.yaml", "deploy/base/api-gateway/deployment.yaml.tpl", slot},
		{"deployment-prod.yaml", "deploy/base/api-gateway/deployment.yaml.tpl", prod},
		{"service-dev.yaml", "deploy/base/api-gateway/service.yaml.tpl", dev},
		{"configure-dev.sh", "bootstrap/remote/10_configure.sh.tpl", script},
		{"prompt-dev.txt", "", script},
	} {
		t.Run(c.golden, func(t *testing.T) {
			var got []byte
			var err error
			if c.file != "" {
				got, err = e.RenderFile(context.Background(), c.file, c.data)
			} else {
				var s string
				s, err = e.RenderString(context.Background(), "prompts/domain.txt.tpl", string(prompt), c.data)
				got = []byte(s)
			}
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", c.golden)
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if string(got) != string(want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n%s", c.file, golden, got)
			}
		})
	}
}
