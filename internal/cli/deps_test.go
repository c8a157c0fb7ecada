package cli

import (
	"os/exec"
	"strings"
	"testing"
)

// TestPinnedDependencies holds the versions the project promises: cobra
// exactly v1.10.2 and the Kubernetes libraries on the v0.36 line, so that no
// new requirement raises them unnoticed. It asks the go command, as a user
// would (`go list -m github.com/spf13/cobra`).
func TestPinnedDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "github.com/spf13/cobra", "k8s.io/client-go", "k8s.io/apimachinery", "k8s.io/api").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	found := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) >= 2 {
			found[f[0]] = f[len(f)-1]
		}
	}
	if v := found["github.com/spf13/cobra"]; v != "v1.10.2" {
		t.Errorf("github.com/spf13/cobra is %q, want v1.10.2", v)
	}
	for _, m := range []string{"k8s.io/client-go", "k8s.io/apimachinery", "k8s.io/api"} {
		if v := found[m]; !strings.HasPrefix(v, "v0.36.") {
			t.Errorf("%s is %q, want v0.36.x", m, v)
		}
	}
}
