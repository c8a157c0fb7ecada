package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/codex-k8s/codex-bootstrap/test/images/imagebuild"
)

func spec(t *testing.T, dir string) imagebuild.Spec {
	t.Helper()
	for name, body := range map[string]string{"prog": "#!program", "tree/a.txt": "a", "tree/sub/b.txt": "b"} {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("a.txt", filepath.Join(dir, "tree", "link")); err != nil {
		t.Fatal(err)
	}
	return imagebuild.Spec{
		Repository: "codex.local/example",
		Files:      []imagebuild.File{{Src: filepath.Join(dir, "prog"), Dst: "/bin/prog", Mode: 0o755}},
		Trees:      []imagebuild.Tree{{Src: filepath.Join(dir, "tree"), Dst: "/opt/tree"}},
		Dirs:       []imagebuild.Dir{{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777}},
		Config:     imagebuild.Config{Entrypoint: []string{"/bin/prog"}, Env: []string{"A=1"}, User: "1000"},
	}
}

// TestBuildIsReproducibleAndCached: the same inputs give the same
// reference and the same bytes, in another folder too; a second build is
// taken from the cache; another content gives another reference.
func TestBuildIsReproducibleAndCached(t *testing.T) {
	ctx := context.Background()
	s := spec(t, t.TempDir())
	out1, out2 := t.TempDir(), t.TempDir()
	r1, err := imagebuild.Build(ctx, s, out1)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := imagebuild.Build(ctx, s, out2)
	if err != nil {
		t.Fatal(err)
	}
	if r1.Ref != r2.Ref || r1.Cached || r2.Cached {
		t.Fatalf("refs %s, %s (cached %t, %t); want one, built twice", r1.Ref, r2.Ref, r1.Cached, r2.Cached)
	}
	b1, _ := os.ReadFile(r1.Path)
	b2, _ := os.ReadFile(r2.Path)
	if !bytes.Equal(b1, b2) {
		t.Fatal("two builds of the same inputs differ")
	}
	again, err := imagebuild.Build(ctx, s, out1)
	if err != nil || !again.Cached || again.Ref != r1.Ref {
		t.Fatalf("rebuild: %+v, %v; want the cached image", again, err)
	}
	if err := os.WriteFile(s.Files[0].Src, []byte("#!changed"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, err := imagebuild.Build(ctx, s, out1)
	if err != nil || changed.Ref == r1.Ref || changed.Cached {
		t.Fatalf("after a change: %+v, %v; want a new image", changed, err)
	}
}

// TestBuildContents: the layer holds the files, parents, links and modes;
// the config what the spec says.
func TestBuildContents(t *testing.T) {
	s := spec(t, t.TempDir())
	r, err := imagebuild.Build(context.Background(), s, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.Ref, "codex.local/example:") {
		t.Fatalf("ref %s", r.Ref)
	}
	img, err := tarball.ImageFromPath(r.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Entrypoint[0] != "/bin/prog" || cfg.Config.User != "1000" || cfg.Config.Env[0] != "A=1" || !cfg.Created.Equal(imagebuild.Epoch) {
		t.Errorf("config %+v", cfg.Config)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %v, %v", layers, err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var got []string
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		line := h.Name + " " + strings.TrimLeft(fs.FileMode(h.Mode).String(), "-")
		if h.Linkname != "" {
			line += " -> " + h.Linkname
		}
		if !h.ModTime.Equal(imagebuild.Epoch) || h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s: time %s, owner %d:%d", h.Name, h.ModTime, h.Uid, h.Gid)
		}
		got = append(got, line)
	}
	want := []string{
		"bin/ rwxr-xr-x", "bin/prog rwxr-xr-x", "opt/ rwxr-xr-x", "opt/tree/ rwxr-xr-x",
		"opt/tree/a.txt rw-r--r--", "opt/tree/link rwxrwxrwx -> a.txt", "opt/tree/sub/ rwxr-xr-x",
		"opt/tree/sub/b.txt rw-r--r--", "tmp/ rwxrwxrwx",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("layer:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestBuildRejectsBadSpecs(t *testing.T) {
	dir := t.TempDir()
	s := spec(t, dir)
	s.Files = append(s.Files, imagebuild.File{Src: filepath.Join(dir, "prog"), Dst: "/bin/prog"})
	if _, err := imagebuild.Build(context.Background(), s, t.TempDir()); err == nil || !strings.Contains(err.Error(), "given twice") {
		t.Errorf("a path given twice: %v", err)
	}
	s = spec(t, t.TempDir())
	s.Files[0].Dst = "relative"
	if _, err := imagebuild.Build(context.Background(), s, t.TempDir()); err == nil || !strings.Contains(err.Error(), "absolute") {
		t.Errorf("a relative path: %v", err)
	}
	s.Files[0] = imagebuild.File{Src: filepath.Join(dir, "missing"), Dst: "/x"}
	if _, err := imagebuild.Build(context.Background(), s, t.TempDir()); err == nil || !strings.Contains(err.Error(), "/x") {
		t.Errorf("a missing file: %v", err)
	}
}
