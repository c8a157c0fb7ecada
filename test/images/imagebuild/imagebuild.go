// Package imagebuild writes container images from files of this machine,
// without a container engine or a registry: one layer of the given files,
// a config (entrypoint, environment, user), saved as a docker-save tarball
// that `ctr images import` reads.
//
// Builds are reproducible: entries are sorted, owned by root and dated
// Epoch, so the same inputs give the same image digest. They are cached by
// content: the file name holds a hash of the reference, the config and every
// entry (path, mode, link target, content), and a build whose file exists is
// not written again.
package imagebuild

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Epoch dates every file and the image itself.
var Epoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// File copies one file of this machine to Dst in the image.
type File struct {
	Src string
	Dst string
	// Mode of the copy; 0 keeps the source's permission bits.
	Mode fs.FileMode
}

// Tree copies a folder of this machine, recursively, to Dst in the image.
// Symbolic links are kept as links.
type Tree struct {
	Src string
	Dst string
}

// Dir is an empty folder in the image (e.g. /tmp with mode 01777).
type Dir struct {
	Path string
	Mode fs.FileMode
}

// Config is what the image runs.
type Config struct {
	Entrypoint []string `json:"entrypoint,omitempty"`
	Cmd        []string `json:"cmd,omitempty"`
	Env        []string `json:"env,omitempty"`
	User       string   `json:"user,omitempty"`
	WorkingDir string   `json:"workingDir,omitempty"`
}

// Spec is one image.
type Spec struct {
	// Repository without a tag, e.g. codex.local/testbox; the tag is the
	// content key.
	Repository string
	Files      []File
	Trees      []Tree
	Dirs       []Dir
	Config     Config
}

// Result is a built (or cached) image.
type Result struct {
	// Ref is Repository:TAG, where TAG is the first 16 hex digits of the
	// content key.
	Ref string
	// Path of the docker-save tarball.
	Path string
	// Cached is true when the tarball already existed.
	Cached bool
}

// entry is one tar entry of the layer.
type entry struct {
	dst  string // absolute path in the image
	src  string // file of this machine, for regular files
	mode fs.FileMode
	link string // target, for symbolic links
	dir  bool
}

// Build writes the image of spec into outDir (as REPO-NAME-TAG.tar) unless
// a tarball of the same content is there already.
func Build(ctx context.Context, spec Spec, outDir string) (Result, error) {
	entries, err := collect(spec)
	if err != nil {
		return Result{}, err
	}
	key, err := contentKey(ctx, spec, entries)
	if err != nil {
		return Result{}, err
	}
	ref := spec.Repository + ":" + key[:16]
	tag, err := name.NewTag(ref, name.StrictValidation)
	if err != nil {
		return Result{}, fmt.Errorf("image reference %q: %w", ref, err)
	}
	file := filepath.Join(outDir, path.Base(spec.Repository)+"-"+key[:16]+".tar")
	res := Result{Ref: ref, Path: file}
	if _, err := os.Stat(file); err == nil {
		res.Cached = true
		return res, nil
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("image folder: %w", err)
	}
	if err := write(ctx, spec, entries, tag, file); err != nil {
		return Result{}, err
	}
	return res, nil
}

// write builds the layer and the image into temporary files and renames the
// tarball into place only when complete.
func write(ctx context.Context, spec Spec, entries []entry, tag name.Tag, file string) error {
	layerFile, err := os.CreateTemp(filepath.Dir(file), ".layer-*.tar")
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	defer os.Remove(layerFile.Name())
	err = writeLayer(ctx, layerFile, entries)
	if cerr := layerFile.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("layer of %s: %w", tag, err)
	}
	img, err := image(spec, layerFile.Name())
	if err != nil {
		return fmt.Errorf("image %s: %w", tag, err)
	}
	tmp := file + ".tmp"
	if err := tarball.MultiRefWriteToFile(tmp, map[name.Reference]v1.Image{tag: img}); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if err := os.Rename(tmp, file); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", file, err)
	}
	return nil
}

func image(spec Spec, layerPath string) (v1.Image, error) {
	layer, err := tarball.LayerFromFile(layerPath,
		tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithCompressedCaching)
	if err != nil {
		return nil, err
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{
		Layer:   layer,
		History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "codex-bootstrap test/images"},
	})
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture = runtime.GOARCH
	cfg.OS = "linux"
	cfg.Created = v1.Time{Time: Epoch}
	cfg.Config.Entrypoint = spec.Config.Entrypoint
	cfg.Config.Cmd = spec.Config.Cmd
	cfg.Config.Env = spec.Config.Env
	cfg.Config.User = spec.Config.User
	cfg.Config.WorkingDir = spec.Config.WorkingDir
	return mutate.ConfigFile(img, cfg)
}

// collect lists the entries of the layer, parents first, sorted by path.
func collect(spec Spec) ([]entry, error) {
	byPath := map[string]entry{}
	add := func(e entry) error {
		if !path.IsAbs(e.dst) || path.Clean(e.dst) != e.dst || e.dst == "/" {
			return fmt.Errorf("image path %q: want a clean absolute path below /", e.dst)
		}
		if old, ok := byPath[e.dst]; ok && !(old.dir && e.dir) {
			return fmt.Errorf("image path %s is given twice (%s and %s)", e.dst, old.src, e.src)
		}
		byPath[e.dst] = e
		for p := path.Dir(e.dst); p != "/"; p = path.Dir(p) {
			if _, ok := byPath[p]; !ok {
				byPath[p] = entry{dst: p, dir: true, mode: 0o755}
			}
		}
		return nil
	}
	for _, d := range spec.Dirs {
		if err := add(entry{dst: d.Path, dir: true, mode: d.Mode}); err != nil {
			return nil, err
		}
	}
	for _, f := range spec.Files {
		fi, err := os.Stat(f.Src)
		if err != nil {
			return nil, fmt.Errorf("image file %s: %w", f.Dst, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("image file %s: %s is not a regular file", f.Dst, f.Src)
		}
		mode := f.Mode
		if mode == 0 {
			mode = fi.Mode().Perm()
		}
		if err := add(entry{dst: f.Dst, src: f.Src, mode: mode}); err != nil {
			return nil, err
		}
	}
	for _, t := range spec.Trees {
		if err := walkTree(t, add); err != nil {
			return nil, err
		}
	}
	entries := make([]entry, 0, len(byPath))
	for _, e := range byPath {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].dst < entries[j].dst })
	return entries, nil
}

func walkTree(t Tree, add func(entry) error) error {
	return filepath.WalkDir(t.Src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("image tree %s: %w", t.Dst, err)
		}
		rel, err := filepath.Rel(t.Src, p)
		if err != nil {
			return err
		}
		dst := path.Join(t.Dst, filepath.ToSlash(rel))
		info, err := d.Info()
		if err != nil {
			return fmt.Errorf("image tree %s: %w", t.Dst, err)
		}
		switch {
		case d.IsDir():
			return add(entry{dst: dst, dir: true, mode: info.Mode().Perm()})
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return fmt.Errorf("image tree %s: %w", t.Dst, err)
			}
			return add(entry{dst: dst, link: target, mode: 0o777})
		case info.Mode().IsRegular():
			return add(entry{dst: dst, src: p, mode: info.Mode().Perm()})
		}
		return nil // sockets, devices and pipes have no place in an image
	})
}

// contentKey hashes the reference, the config and every entry, content
// included.
func contentKey(ctx context.Context, spec Spec, entries []entry) (string, error) {
	h := sha256.New()
	cfg, err := json.Marshal(spec.Config)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(h, "repository %s\nconfig %s\narch %s\n", spec.Repository, cfg, runtime.GOARCH)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %o %t %s\n", e.dst, e.mode, e.dir, e.link)
		if e.src == "" || e.dir || e.link != "" {
			continue
		}
		if err := hashFile(h, e.src); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

func writeLayer(ctx context.Context, w io.Writer, entries []entry) error {
	tw := tar.NewWriter(w)
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeEntry(tw, e); err != nil {
			return err
		}
	}
	return tw.Close()
}

func writeEntry(tw *tar.Writer, e entry) error {
	hdr := &tar.Header{
		Name:    strings.TrimPrefix(e.dst, "/"),
		Mode:    int64(e.mode.Perm()) | modeBits(e.mode),
		ModTime: Epoch,
		Format:  tar.FormatPAX,
	}
	switch {
	case e.dir:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		return tw.WriteHeader(hdr)
	case e.link != "":
		hdr.Typeflag = tar.TypeSymlink
		hdr.Linkname = e.link
		return tw.WriteHeader(hdr)
	}
	f, err := os.Open(e.src)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	hdr.Typeflag = tar.TypeReg
	hdr.Size = fi.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err == nil && n != fi.Size() {
		err = errors.New("file changed while it was read")
	}
	if err != nil {
		return fmt.Errorf("%s: %w", e.src, err)
	}
	return nil
}

// modeBits carries setuid, setgid and sticky into the tar mode.
func modeBits(m fs.FileMode) int64 {
	var b int64
	if m&fs.ModeSetuid != 0 {
		b |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		b |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		b |= 0o1000
	}
	return b
}
