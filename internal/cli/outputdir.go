package cli

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// The output-folder protocol of `reconcile --dry-run --output-dir`: the
// rendered manifests, one folder per node, and a marker listing what the
// render wrote, so that the next render replaces exactly that and nothing
// else: a file or folder the tool did not write is never removed.

// manifestsMarker marks a folder written by --output-dir and lists every
// file in it that the render wrote: those are replaced by the next render,
// and anything else in the folder makes it refuse.
const manifestsMarker = ".codex-bootstrap-manifests"

const markerHeader = "# written by codex-bootstrap reconcile --dry-run --output-dir: the files below\n# are replaced by the next render; a folder holding other files is refused\n"

// stagingPrefix starts the name of the folder a render writes into before
// moving files into place. A folder of that name is the tool's only when the
// marker lists it (a `staging "NAME"` line), written before it is made.
const stagingPrefix = ".codex-bootstrap-render-"

// marker is what an output folder's marker says.
type marker struct {
	// present: the folder has a marker at all.
	present bool
	// legacy: a marker from before markers listed files; it owns the files
	// inside node folders ("NN-name/").
	legacy bool
	// files the renders listed wrote; staging folders (top-level names)
	// they made.
	files, staging map[string]bool
}

// writeManifests writes each node's rendered manifests under dir, one folder
// per node prefixed with its apply position. The folder is locked for the
// render (a second render into it at the same time fails at once). Files are
// written to a staging folder first and moved into place one by one, the
// marker listing both renders meanwhile, so a failure leaves every file
// accounted for. Files of an earlier render that this plan does not have are
// removed, and node folders they leave empty, so that `kubectl apply -R` of
// the folder applies this plan only. A file the earlier render did not
// write is refused rather than overwritten or mixed with.
func writeManifests(dir string, p *plan.Plan) error {
	fail := func(err error) error { return fmt.Errorf("write manifests: %w", err) }
	files, err := outputFiles(p)
	if err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	unlock, err := lockFolder(dir)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	old, owned, err := checkFolder(dir)
	if err != nil {
		return err
	}
	staging, err := reserveStaging(dir, old, files)
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(filepath.Join(dir, staging))
	if err := stage(filepath.Join(dir, staging), files); err != nil {
		return fail(err)
	}
	for _, name := range slices.Sorted(maps.Keys(files)) {
		to := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
			return fail(err)
		}
		if err := os.Rename(filepath.Join(dir, staging, filepath.FromSlash(name)), to); err != nil {
			return fail(err)
		}
	}
	if err := removeStale(dir, owned, files); err != nil {
		return fail(err)
	}
	for name := range old.staging {
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return fail(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(dir, staging)); err != nil {
		return fail(err)
	}
	if err := writeMarker(dir, marker{files: keySet(files)}); err != nil {
		return fail(err)
	}
	return nil
}

// outputFiles names the file each manifest of the plan is written to,
// "NN-node/name": the template's base name without .tpl, prefixed with its
// position in the node when two share a name. Two manifests that would
// still land on one file are an error naming both.
func outputFiles(p *plan.Plan) (map[string][]byte, error) {
	out := map[string][]byte{}
	for i, n := range p.Nodes {
		sub := fmt.Sprintf("%02d-%s", i+1, n.Name)
		from := map[string]string{} // output name -> the template written there
		for j, m := range n.Manifests {
			name := strings.TrimSuffix(path.Base(filepath.ToSlash(m.Path)), ".tpl")
			if _, used := from[name]; used {
				// Two templates of one node share a file name (different folders).
				name = fmt.Sprintf("%02d-%s", j+1, name)
			}
			if first, used := from[name]; used {
				return nil, fmt.Errorf("node %s: manifests %s and %s would both be written to %s/%s: rename one of them", n.Name, first, m.Path, sub, name)
			}
			from[name] = m.Path
			out[sub+"/"+name] = m.Data
		}
	}
	return out, nil
}

// checkFolder reads the folder's marker and refuses a folder that is not
// empty without one, or that holds files no render listed. It returns the
// marker and the files it owns that are there.
func checkFolder(dir string) (marker, []string, error) {
	m, err := readMarker(dir)
	if err != nil {
		return m, nil, fmt.Errorf("write manifests: %w", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return m, nil, fmt.Errorf("write manifests: %w", err)
	}
	if len(entries) > 0 && !m.present {
		return m, nil, fmt.Errorf("write manifests: %s is not empty and was not written by --output-dir: choose a new or empty folder", dir)
	}
	owned, foreign, err := sortFiles(dir, m)
	if err != nil {
		return m, nil, fmt.Errorf("write manifests: %w", err)
	}
	if len(foreign) > 0 {
		more := ""
		if len(foreign) > 5 {
			more = fmt.Sprintf(" and %d more", len(foreign)-5)
			foreign = foreign[:5]
		}
		return m, nil, fmt.Errorf("write manifests: %s holds files an earlier render did not write (%s%s): move them out, or choose another folder", dir, strings.Join(foreign, ", "), more)
	}
	return m, owned, nil
}

// reserveStaging picks the staging folder's name, lists it in the marker
// (with every file of the earlier render and of this one, so that whatever
// happens next every file in the folder stays listed) and only then makes
// it: a folder of that name that the marker does not list is never the
// tool's.
func reserveStaging(dir string, old marker, files map[string][]byte) (string, error) {
	for range 10 {
		b := make([]byte, 6)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		name := stagingPrefix + hex.EncodeToString(b)
		if _, err := os.Lstat(filepath.Join(dir, name)); !errors.Is(err, fs.ErrNotExist) {
			continue // taken (or unreadable): another name
		}
		staging := maps.Clone(old.staging)
		if staging == nil {
			staging = map[string]bool{}
		}
		staging[name] = true
		all := keySet(files)
		maps.Copy(all, old.files)
		if err := writeMarker(dir, marker{files: all, staging: staging}); err != nil {
			return "", err
		}
		if err := os.Mkdir(filepath.Join(dir, name), 0o755); err != nil {
			return "", err
		}
		return name, nil
	}
	return "", fmt.Errorf("no free name for a staging folder in %s", dir)
}

// stage writes the files under the staging folder.
func stage(staging string, files map[string][]byte) error {
	for name, data := range files {
		p := filepath.Join(staging, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes the files an earlier render wrote that this one did
// not, then the node folders that held them when they are left empty.
func removeStale(dir string, owned []string, written map[string][]byte) error {
	folders := map[string]bool{}
	for _, name := range owned {
		if _, ok := written[name]; ok {
			continue
		}
		if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if parent := path.Dir(name); parent != "." {
			folders[parent] = true
		}
	}
	for _, f := range slices.Sorted(maps.Keys(folders)) {
		// Only when empty: a folder holding anything else is left alone.
		_ = os.Remove(filepath.Join(dir, filepath.FromSlash(f)))
	}
	return nil
}

// readMarker reads the folder's marker. A marker with the header lists the
// files (none, after a render of no node); one from before lists were kept
// ("written by ...") owns the files inside node folders ("NN-name/").
func readMarker(dir string) (marker, error) {
	m := marker{files: map[string]bool{}, staging: map[string]bool{}}
	data, err := os.ReadFile(filepath.Join(dir, manifestsMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return m, nil
	}
	if err != nil {
		return m, err
	}
	m.present = true
	m.legacy = !strings.HasPrefix(string(data), "# written by ")
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "written by ") {
			continue
		}
		set := m.files
		if rest, ok := strings.CutPrefix(line, "staging "); ok {
			set, line = m.staging, rest
		}
		// Each path is written quoted: file names may hold spaces or
		// line breaks.
		name, err := strconv.Unquote(line)
		if err != nil {
			return m, fmt.Errorf("%s: unreadable line %q: delete the folder or choose another", filepath.Join(dir, manifestsMarker), line)
		}
		set[name] = true
	}
	return m, nil
}

var nodeFolder = regexp.MustCompile(`^[0-9]{2,}-[^/]+/[^/]+$`)

// sortFiles walks dir and sorts its files (slash-separated, relative) into
// those the marker owns and foreign ones. Folders are neither: they hold
// files or are left alone; a staging folder the marker lists is the tool's.
func sortFiles(dir string, m marker) (owned, foreign []string, err error) {
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && m.staging[rel]:
			return filepath.SkipDir // staging of a render that was interrupted
		case d.IsDir(), rel == manifestsMarker:
			return nil
		case m.files[rel], m.legacy && nodeFolder.MatchString(rel):
			owned = append(owned, rel)
			return nil
		}
		foreign = append(foreign, rel)
		return nil
	})
	return owned, foreign, err
}

func writeMarker(dir string, m marker) error {
	var b strings.Builder
	b.WriteString(markerHeader)
	for _, f := range slices.Sorted(maps.Keys(m.staging)) {
		b.WriteString("staging " + strconv.Quote(f) + "\n")
	}
	for _, f := range slices.Sorted(maps.Keys(m.files)) {
		b.WriteString(strconv.Quote(f) + "\n")
	}
	return os.WriteFile(filepath.Join(dir, manifestsMarker), []byte(b.String()), 0o644)
}

func keySet[V any](m map[string]V) map[string]bool {
	out := make(map[string]bool, len(m))
	for k := range m {
		out[k] = true
	}
	return out
}
