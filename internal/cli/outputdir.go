package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// The output-folder protocol of `reconcile --dry-run --output-dir`: the
// rendered manifests, one folder per node, and a marker listing what the
// render wrote, so that the next render replaces exactly that.

// manifestsMarker marks a folder written by --output-dir and lists every
// file in it that the render wrote: those are replaced by the next render,
// and anything else in the folder makes it refuse.
const manifestsMarker = ".codex-bootstrap-manifests"

const markerHeader = "# written by codex-bootstrap reconcile --dry-run --output-dir: the files below\n# are replaced by the next render; a folder holding other files is refused\n"

// writeManifests writes each node's rendered manifests under dir, one folder
// per node prefixed with its apply position. Files are written to a staging
// folder first and moved into place, so a failure leaves no partial output.
// Files of an earlier render that this plan does not have are removed, so
// that `kubectl apply -R` of the folder applies this plan only. A file the
// earlier render did not write, or a folder it never wrote to, is refused
// rather than overwritten or mixed with.
func writeManifests(dir string, p *plan.Plan) error {
	fail := func(err error) error { return fmt.Errorf("write manifests: %w", err) }
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fail(err)
	}
	owned, marked, err := readMarker(dir)
	if err != nil {
		return fail(err)
	}
	if len(entries) > 0 && !marked {
		return fmt.Errorf("write manifests: %s is not empty and was not written by --output-dir: choose a new or empty folder", dir)
	}
	if foreign, err := foreignFiles(dir, owned); err != nil {
		return fail(err)
	} else if len(foreign) > 0 {
		more := ""
		if len(foreign) > 5 {
			more = fmt.Sprintf(" and %d more", len(foreign)-5)
			foreign = foreign[:5]
		}
		return fmt.Errorf("write manifests: %s holds files an earlier render did not write (%s%s): move them out, or choose another folder", dir, strings.Join(foreign, ", "), more)
	}

	staging, err := os.MkdirTemp(dir, ".render-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(staging)
	var moves [][2]string
	written := map[string]bool{}
	for i, st := range p.Nodes {
		sub := fmt.Sprintf("%02d-%s", i+1, st.Name)
		if err := os.MkdirAll(filepath.Join(staging, sub), 0o755); err != nil {
			return fail(err)
		}
		used := map[string]bool{}
		for j, m := range st.Manifests {
			name := strings.TrimSuffix(filepath.Base(m.Path), ".tpl")
			if used[name] {
				// Two templates of one node share a file name (different folders).
				name = fmt.Sprintf("%02d-%s", j+1, name)
			}
			used[name] = true
			if err := os.WriteFile(filepath.Join(staging, sub, name), m.Data, 0o644); err != nil {
				return fail(err)
			}
			written[sub+"/"+name] = true
		}
		moves = append(moves, [2]string{filepath.Join(staging, sub), filepath.Join(dir, sub)})
	}
	// While files move, the marker lists both renders: whatever happens,
	// every file in the folder stays listed.
	if err := writeMarker(dir, union(owned, written)); err != nil {
		return fail(err)
	}
	keep := map[string]bool{manifestsMarker: true, filepath.Base(staging): true}
	for _, mv := range moves {
		keep[filepath.Base(mv[1])] = true
		if err := os.RemoveAll(mv[1]); err != nil {
			return fail(err)
		}
		if err := os.Rename(mv[0], mv[1]); err != nil {
			return fail(err)
		}
	}
	for _, e := range entries {
		if !keep[e.Name()] {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				return fail(err)
			}
		}
	}
	if err := writeMarker(dir, written); err != nil {
		return fail(err)
	}
	return nil
}

// readMarker returns the files an earlier render listed, and whether the
// folder has a marker at all. A marker without a list (written before lists
// were kept) owns the files inside node folders ("NN-name/").
func readMarker(dir string) (owned map[string]bool, marked bool, err error) {
	data, err := os.ReadFile(filepath.Join(dir, manifestsMarker))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	owned = map[string]bool{}
	listed := false
	for line := range strings.SplitSeq(string(data), "\n") {
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "written by ") {
			continue
		}
		// Each path is written quoted: file names may hold spaces or
		// line breaks.
		path, err := strconv.Unquote(line)
		if err != nil {
			return nil, true, fmt.Errorf("%s: unreadable line %q: delete the folder or choose another", filepath.Join(dir, manifestsMarker), line)
		}
		owned[path], listed = true, true
	}
	if !listed {
		owned = nil // the old marker: node folders are owned, see foreignFiles
	}
	return owned, true, nil
}

var (
	nodeFolder = regexp.MustCompile(`^[0-9]{2,}-[^/]+/[^/]+$`)
	// stagingFolder is what os.MkdirTemp(dir, ".render-") makes.
	stagingFolder = regexp.MustCompile(`^\.render-[0-9]+$`)
)

// foreignFiles lists the files under dir, slash-separated, that neither
// the marker nor an interrupted render's staging folder accounts for.
func foreignFiles(dir string, owned map[string]bool) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		rel = filepath.ToSlash(rel)
		switch {
		case rel == ".":
			return nil
		case d.IsDir() && stagingFolder.MatchString(rel):
			return filepath.SkipDir // staging of a render that was interrupted
		case d.IsDir(), rel == manifestsMarker:
			return nil
		case owned != nil && owned[rel], owned == nil && nodeFolder.MatchString(rel):
			return nil
		}
		out = append(out, rel)
		return nil
	})
	return out, err
}

func writeMarker(dir string, files map[string]bool) error {
	var b strings.Builder
	b.WriteString(markerHeader)
	for _, f := range slices.Sorted(maps.Keys(files)) {
		b.WriteString(strconv.Quote(f) + "\n")
	}
	return os.WriteFile(filepath.Join(dir, manifestsMarker), []byte(b.String()), 0o644)
}

func union(a, b map[string]bool) map[string]bool {
	out := make(map[string]bool, len(a)+len(b))
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}
