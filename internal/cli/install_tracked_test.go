package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestTrackedConfigFile: install refuses to save secrets into a config file
// that git tracks; tracked tells which files those are, with a real git.
func TestTrackedConfigFile(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed")
	}
	repo := t.TempDir()
	gitRun := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	gitRun("init", "-q")
	dir := filepath.Join(repo, "bootstrap", "host")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	trackedFile := filepath.Join(dir, "config.env")
	ignoredFile := filepath.Join(dir, "other.env")
	for _, f := range []string{trackedFile, ignoredFile} {
		if err := os.WriteFile(f, []byte("# values\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	gitRun("add", "bootstrap/host/config.env")

	outside := filepath.Join(t.TempDir(), "config.env")
	for _, c := range []struct {
		path string
		want bool
	}{
		{trackedFile, true},
		{ignoredFile, false},
		{filepath.Join(dir, "absent.env"), false},
		{outside, false},
	} {
		if got := tracked(c.path); got != c.want {
			t.Errorf("tracked(%s) = %v, want %v", c.path, got, c.want)
		}
	}
}
