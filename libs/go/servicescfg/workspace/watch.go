package workspace

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/fsnotify/fsnotify"
)

// WatchOptions tune Watch.
type WatchOptions struct {
	// Quiet is how long the tree must stay still before a sync (default
	// 15ms): an editor's save (write, rename, chmod) goes as one sync.
	Quiet time.Duration
	// MaxDelay bounds the wait under a stream of changes (default 250ms).
	MaxDelay time.Duration
}

// Watch syncs the tree, then again after each burst of changes (writes,
// creations, renames and deletions, in every folder that is not ignored)
// until ctx ends. onSync gets each sync's result or error; an error does
// not end the watch (the next change tries again), except when the watcher
// itself fails.
func (s *Syncer) Watch(ctx context.Context, opts WatchOptions, onSync func(Result, error)) error {
	if opts.Quiet <= 0 {
		opts.Quiet = 15 * time.Millisecond
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = 250 * time.Millisecond
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("watching %s: %w", s.Tree.Root, err)
	}
	defer w.Close()
	watched := map[string]bool{}
	// Watches go on before each scan they cover: a change between a scan
	// and its watch would be lost otherwise. The first scan finds the
	// folders; a sync that finds new folders (their files may have been
	// written before their watch) is followed by another.
	if _, err := s.Tree.Scan(); err != nil {
		return err
	}
	if _, err := s.watchDirs(w, watched); err != nil {
		return err
	}
	syncNow := func(first time.Time) error {
		for {
			res, err := s.Sync(ctx)
			if !first.IsZero() {
				res.Wait = time.Since(first) - res.Scan - res.Send
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			onSync(res, err)
			added, werr := s.watchDirs(w, watched)
			if werr != nil {
				return werr
			}
			if added == 0 || err != nil {
				return nil
			}
			first = time.Time{}
		}
	}
	if err := syncNow(time.Time{}); err != nil {
		return err
	}
	return s.loop(ctx, w, opts, syncNow)
}

// loop gathers events into bursts and syncs after each: when the tree has
// been quiet for opts.Quiet, or opts.MaxDelay after the burst's first
// event.
func (s *Syncer) loop(ctx context.Context, w *fsnotify.Watcher, opts WatchOptions, syncNow func(time.Time) error) error {
	var first time.Time
	quiet := time.NewTimer(time.Hour)
	quiet.Stop()
	var deadline <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-w.Events:
			if !ok {
				return ErrWatchEnded
			}
			if first.IsZero() {
				first = time.Now()
				deadline = time.After(opts.MaxDelay)
			}
			quiet.Reset(opts.Quiet)
			continue
		case err, ok := <-w.Errors:
			if !ok {
				return ErrWatchEnded
			}
			return fmt.Errorf("watching %s: %w", s.Tree.Root, err)
		case <-quiet.C:
		case <-deadline:
		}
		quiet.Stop()
		deadline = nil
		f := first
		first = time.Time{}
		if err := syncNow(f); err != nil {
			return err
		}
	}
}

// watchDirs watches every folder of the last scan not watched yet and
// says how many it added. (fsnotify drops the watches of deleted folders
// by itself.)
func (s *Syncer) watchDirs(w *fsnotify.Watcher, watched map[string]bool) (int, error) {
	added := 0
	for _, d := range s.Tree.dirs {
		if watched[d] {
			continue
		}
		if err := w.Add(d); errors.Is(err, fs.ErrNotExist) {
			continue // gone since the scan: its deletion is an event already
		} else if err != nil {
			return added, fmt.Errorf("watching %s: %w", d, err)
		}
		watched[d] = true
		added++
	}
	return added, nil
}
