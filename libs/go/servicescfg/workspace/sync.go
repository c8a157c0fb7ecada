package workspace

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Syncer copies a local tree into a workspace through its helper pod.
type Syncer struct {
	Tree *Tree
	Spec Spec
	// Pod is the helper pod's name (HelperName once EnsureHelper ran).
	Pod  string
	Exec Executor

	// remote is the workspace's manifest as of the last sync; nil until
	// read from the workspace.
	remote Manifest
}

// Result says what one sync did.
type Result struct {
	Changes Changes
	// Bytes is the size of the archive sent.
	Bytes int
	// Scan and Send split the time: reading the local tree, and the
	// archive's trip to the workspace until the helper applied it.
	Scan, Send time.Duration
	// Wait is, in Watch, the time from the first change of a burst to the
	// scan (the quiet period that gathers an editor's writes).
	Wait time.Duration
}

// Sync sends what changed since the last complete sync: new and changed
// files, and deletions. It is safe to run again after an interruption.
func (s *Syncer) Sync(ctx context.Context) (Result, error) {
	var res Result
	if s.remote == nil {
		m, err := s.readRemote(ctx)
		if err != nil {
			return res, err
		}
		s.remote = m
	}
	t0 := time.Now()
	local, err := s.Tree.Scan()
	if err != nil {
		return res, err
	}
	res.Scan = time.Since(t0)
	res.Changes = Diff(s.remote, local)
	if res.Changes.Empty() {
		return res, nil
	}
	var buf bytes.Buffer
	if err := writeArchive(&buf, s.Tree.Root, s.remote, local, res.Changes); err != nil {
		return res, err
	}
	res.Bytes = buf.Len()
	t1 := time.Now()
	if err := s.run(ctx, applyScript, &buf, nil); err != nil {
		s.remote = nil // unknown now: read it again next time
		return res, fmt.Errorf("writing into the workspace: %w", err)
	}
	res.Send = time.Since(t1)
	s.remote = local
	return res, nil
}

// readRemote reads what the workspace holds: the pending manifest of an
// interrupted sync, else the manifest of the last complete one, else
// nothing (a first sync, or manifests too damaged to read: everything is
// sent again).
func (s *Syncer) readRemote(ctx context.Context) (Manifest, error) {
	var out bytes.Buffer
	if err := s.run(ctx, readScript, nil, &out); err != nil {
		return nil, fmt.Errorf("reading the workspace's manifest: %w", err)
	}
	pend, last, _ := bytes.Cut(out.Bytes(), []byte{0})
	for _, b := range [][]byte{pend, last} {
		m := Manifest{}
		if len(b) > 0 && json.Unmarshal(b, &m) == nil {
			return m, nil
		}
	}
	return Manifest{}, nil
}

// run runs a script of the helper with the mount path as $1.
func (s *Syncer) run(ctx context.Context, script string, stdin io.Reader, stdout io.Writer) error {
	var stderr bytes.Buffer
	if stdout == nil {
		stdout = io.Discard
	}
	err := s.Exec.Exec(ctx, s.Spec.Namespace, s.Pod, HelperName, []string{"sh", "-c", script, "sh", s.Spec.MountPath}, stdin, stdout, &stderr)
	if err != nil {
		if msg := strings.TrimSpace(stderr.String()); msg != "" {
			return fmt.Errorf("%w: %s", err, lastLine(msg))
		}
		return err
	}
	return nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// ErrWatchEnded is returned by Watch when its file watcher stops.
var ErrWatchEnded = errors.New("file watcher ended")
