package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/test/images/imagebuild"
)

// Registry is the made-up registry host of every image built here: nothing
// is ever pulled from it (the kubelet finds the images already imported).
const Registry = "codex.local"

type builder struct {
	src string // test/images
	out string
	log io.Writer
}

var specs = map[string]func(*builder, context.Context) (imagebuild.Spec, error){
	"pause":    (*builder).pause,
	"testbox":  (*builder).testbox,
	"go-dev":   (*builder).goDev,
	"node-dev": (*builder).nodeDev,
	"toolbox":  (*builder).toolbox,
}

func names() string {
	n := make([]string, 0, len(specs))
	for k := range specs {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

func (b *builder) build(ctx context.Context, name string) (imagebuild.Result, error) {
	spec, ok := specs[name]
	if !ok {
		return imagebuild.Result{}, fmt.Errorf("unknown image (want one of: %s)", names())
	}
	s, err := spec(b, ctx)
	if err != nil {
		return imagebuild.Result{}, err
	}
	return imagebuild.Build(ctx, s, b.out)
}

// tmpDir is /tmp of every image: writable by any user, as programs expect.
var tmpDir = imagebuild.Dir{Path: "/tmp", Mode: fs.ModeDir | fs.ModeSticky | 0o777}

func (b *builder) pause(ctx context.Context) (imagebuild.Spec, error) {
	bin, err := b.goBuild(ctx, "./pause", "pause")
	if err != nil {
		return imagebuild.Spec{}, err
	}
	return imagebuild.Spec{
		Repository: Registry + "/pause",
		Files:      []imagebuild.File{{Src: bin, Dst: "/pause", Mode: 0o755}},
		Config:     imagebuild.Config{Entrypoint: []string{"/pause"}},
	}, nil
}

func (b *builder) testbox(ctx context.Context) (imagebuild.Spec, error) {
	bin, err := b.goBuild(ctx, "./testbox", "testbox")
	if err != nil {
		return imagebuild.Spec{}, err
	}
	return imagebuild.Spec{
		Repository: Registry + "/testbox",
		Files:      []imagebuild.File{{Src: bin, Dst: "/testbox", Mode: 0o755}},
		Dirs:       []imagebuild.Dir{tmpDir},
		Config: imagebuild.Config{
			Entrypoint: []string{"/testbox"},
			Cmd:        []string{"sleep"},
			Env:        []string{"PATH=/"},
		},
	}, nil
}

// toolboxPrograms are what the engine's workspace helper runs (a POSIX
// shell, tar, xargs and the file tools), as busybox provides them in a
// cluster.
var toolboxPrograms = []string{"tar", "xargs", "rm", "rmdir", "mv", "mkdir", "cat", "sleep", "ls", "id", "chmod"}

// toolbox is this machine's shell, file tools and git at their own
// paths, for the engine's workspace helper pod and its git clone.
func (b *builder) toolbox(ctx context.Context) (imagebuild.Spec, error) {
	files, err := hostProgram(ctx, "/bin/sh", "/bin/sh")
	if err != nil {
		return imagebuild.Spec{}, err
	}
	for _, name := range toolboxPrograms {
		p, err := exec.LookPath(name)
		if err != nil {
			return imagebuild.Spec{}, fmt.Errorf("%s is not installed: %w", name, err)
		}
		f, err := hostProgram(ctx, p, "/usr/bin/"+name)
		if err != nil {
			return imagebuild.Spec{}, err
		}
		files = append(files, f...)
	}
	// git and its HTTP transport, for the workspace's git source.
	for _, p := range [][2]string{{"/usr/bin/git", "/usr/bin/git"}, {"/usr/lib/git-core/git-remote-http", "/usr/lib/git-core/git-remote-http"}} {
		f, err := hostProgram(ctx, p[0], p[1])
		if err != nil {
			return imagebuild.Spec{}, err
		}
		files = append(files, f...)
	}
	return imagebuild.Spec{
		Repository: Registry + "/toolbox",
		Files:      dedupe(files),
		Dirs:       []imagebuild.Dir{tmpDir},
		Config: imagebuild.Config{
			Env: []string{"PATH=/usr/bin:/bin", "HOME=/tmp"},
			Cmd: []string{"sh"},
		},
	}, nil
}

// devShell is the shell of the dev images and the sleep their commands
// wait with until the workspace holds the sources, as in any Debian or
// Alpine based dev image.
var devShell = [][2]string{{"/bin/sh", "/bin/sh"}, {"/usr/bin/sleep", "/usr/bin/sleep"}}

// goDev is this machine's Go toolchain at its own path, air (the version
// pinned in test/images/go.mod), and a shell for air's build command. Builds
// in the pod use the modules of the workspace only (GOPROXY=off).
func (b *builder) goDev(ctx context.Context) (imagebuild.Spec, error) {
	goroot, err := output(ctx, b.src, "go", "env", "GOROOT")
	if err != nil {
		return imagebuild.Spec{}, err
	}
	air, err := b.goBuild(ctx, "github.com/air-verse/air", "air")
	if err != nil {
		return imagebuild.Spec{}, err
	}
	files := []imagebuild.File{{Src: air, Dst: "/usr/local/bin/air", Mode: 0o755}}
	for _, p := range devShell {
		f, err := hostProgram(ctx, p[0], p[1])
		if err != nil {
			return imagebuild.Spec{}, err
		}
		files = append(files, f...)
	}
	return imagebuild.Spec{
		Repository: Registry + "/go-dev",
		Files:      dedupe(files),
		Trees:      []imagebuild.Tree{{Src: goroot, Dst: "/usr/local/go"}},
		Dirs:       []imagebuild.Dir{tmpDir, {Path: "/workspace", Mode: fs.ModeDir | 0o777}},
		Config: imagebuild.Config{
			Env: []string{
				"PATH=/usr/local/go/bin:/usr/local/bin:/usr/bin:/bin",
				"HOME=/tmp", "GOPATH=/tmp/go", "GOCACHE=/tmp/go-build",
				"CGO_ENABLED=0", "GOFLAGS=-buildvcs=false", "GOTOOLCHAIN=local", "GOPROXY=off",
			},
			WorkingDir: "/workspace",
			Cmd:        []string{"air"},
		},
	}, nil
}

// nodeDev is this machine's Node.js with its libraries and Vite with every
// dependency, installed once from test/images/node-dev/package-lock.json.
func (b *builder) nodeDev(ctx context.Context) (imagebuild.Spec, error) {
	modules, err := b.npmInstall(ctx)
	if err != nil {
		return imagebuild.Spec{}, err
	}
	nodePath, err := exec.LookPath("node")
	if err != nil {
		return imagebuild.Spec{}, fmt.Errorf("node is not installed: %w", err)
	}
	var files []imagebuild.File
	for _, p := range append([][2]string{{nodePath, "/usr/local/bin/node"}, {"/usr/bin/env", "/usr/bin/env"}}, devShell...) {
		f, err := hostProgram(ctx, p[0], p[1])
		if err != nil {
			return imagebuild.Spec{}, err
		}
		files = append(files, f...)
	}
	// Native addons (Vite's bundler is one) need libraries of their own.
	libs, err := addonLibraries(ctx, modules)
	if err != nil {
		return imagebuild.Spec{}, err
	}
	files = append(files, libs...)
	return imagebuild.Spec{
		Repository: Registry + "/node-dev",
		Files:      dedupe(files),
		Trees:      []imagebuild.Tree{{Src: modules, Dst: "/opt/vite/node_modules"}},
		Dirs:       []imagebuild.Dir{tmpDir, {Path: "/workspace", Mode: fs.ModeDir | 0o777}},
		Config: imagebuild.Config{
			Env: []string{
				"PATH=/opt/vite/node_modules/.bin:/usr/local/bin:/usr/bin:/bin",
				"NODE_PATH=/opt/vite/node_modules", "HOME=/tmp",
			},
			WorkingDir: "/workspace",
			Cmd:        []string{"vite"},
		},
	}, nil
}

// goBuild builds a static program of this module into the build folder.
// (Its Go build ID, a hash of the inputs, stays: go skips the link when the
// program there is current.)
func (b *builder) goBuild(ctx context.Context, pkg, name string) (string, error) {
	bin := filepath.Join(b.out, "bin", name)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, pkg)
	cmd.Dir = b.src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOWORK=off", "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
	}
	return bin, nil
}

// npmInstall installs the locked Vite into a folder named after the lock's
// hash, once.
func (b *builder) npmInstall(ctx context.Context) (string, error) {
	lockDir := filepath.Join(b.src, "node-dev")
	lock, err := os.ReadFile(filepath.Join(lockDir, "package-lock.json"))
	if err != nil {
		return "", err
	}
	pkg, err := os.ReadFile(filepath.Join(lockDir, "package.json"))
	if err != nil {
		return "", err
	}
	dir := filepath.Join(b.out, "npm", shortHash(append(pkg, lock...)))
	modules := filepath.Join(dir, "node_modules")
	if _, err := os.Stat(modules); err == nil {
		return modules, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "package-lock.json"} {
		if err := copyFile(filepath.Join(lockDir, f), filepath.Join(tmp, f)); err != nil {
			return "", err
		}
	}
	fmt.Fprintf(b.log, "images: npm ci in %s\n", tmp)
	cmd := exec.CommandContext(ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts=false")
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("npm ci (from %s): %w\n%s", lockDir, err, out)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", err
	}
	return modules, nil
}

var lddLine = regexp.MustCompile(`(?:=> )?(/[^ ]+) \(0x[0-9a-f]+\)`)

// hostProgram is a program of this machine and the shared libraries ldd
// names for it, at their own paths.
func hostProgram(ctx context.Context, src, dst string) ([]imagebuild.File, error) {
	files := []imagebuild.File{{Src: src, Dst: dst, Mode: 0o755}}
	out, err := exec.CommandContext(ctx, "ldd", src).Output()
	if err != nil {
		// "not a dynamic executable": a static program needs nothing else.
		return files, nil
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddLine.FindStringSubmatch(sc.Text()); m != nil {
			files = append(files, imagebuild.File{Src: m[1], Dst: m[1]})
		}
	}
	return files, nil
}

// addonLibraries lists the shared libraries of every native Node.js addon
// (*.node) under dir.
func addonLibraries(ctx context.Context, dir string) ([]imagebuild.File, error) {
	var libs []imagebuild.File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".node") {
			return err
		}
		f, err := hostProgram(ctx, p, "/unused")
		if err != nil {
			return err
		}
		libs = append(libs, f[1:]...)
		return nil
	})
	return libs, err
}

func dedupe(files []imagebuild.File) []imagebuild.File {
	seen := map[string]bool{}
	var out []imagebuild.File
	for _, f := range files {
		if !seen[f.Dst] {
			seen[f.Dst] = true
			out = append(out, f)
		}
	}
	return out
}

func output(ctx context.Context, dir, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	return strings.TrimSpace(string(out)), nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

func shortHash(b []byte) string {
	return fmt.Sprintf("%x", sha256.Sum256(b))[:16]
}
