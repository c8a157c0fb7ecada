package cli

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestPinnedDependencies holds the versions the project promises: cobra
// exactly v1.10.2 and the Kubernetes libraries on the v0.36 line, so that no
// new requirement raises them unnoticed.
func TestPinnedDependencies(t *testing.T) {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		t.Skip("no build information in this binary")
	}
	found := map[string]string{}
	for _, d := range bi.Deps {
		v := d.Version
		if d.Replace != nil {
			v = d.Replace.Version
		}
		found[d.Path] = v
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
