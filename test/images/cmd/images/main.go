// Command images builds the container images of the local real node from
// this machine's files, with no container engine, registry or network (see
// package imagebuild), and prints one line per image:
//
//	NAME REF TARBALL
//
// for test/cluster/cluster.sh to import with `ctr images import`.
//
//	images -src test/images -out DIR NAME...
//
// Images: pause (the pod sandbox), testbox (the test program), go-dev (this
// machine's Go toolchain and a pinned air), node-dev (this machine's Node.js
// and a pinned Vite with its dependencies), toolbox (this machine's shell, tar
// and file tools: the engine's workspace helper).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "images:", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("images", flag.ContinueOnError)
	fs.SetOutput(stderr)
	src := fs.String("src", ".", "the test/images folder (sources of the programs and the Node.js lock)")
	out := fs.String("out", "", "folder of the image tarballs and build caches (required)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() == 0 {
		return fmt.Errorf("usage: images -src DIR -out DIR NAME... (names: %s)", names())
	}
	b := &builder{src: *src, out: *out, log: stderr}
	for _, n := range fs.Args() {
		res, err := b.build(ctx, n)
		if err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
		state := "built"
		if res.Cached {
			state = "cached"
		}
		if err := removeOthers(res.Path); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "images: %s %s (%s)\n", n, state, res.Ref)
		fmt.Fprintf(stdout, "%s %s %s\n", n, res.Ref, res.Path)
	}
	return nil
}

// removeOthers deletes older tarballs of the same image (NAME-KEY.tar with
// another KEY), so the cache holds one of each.
func removeOthers(keep string) error {
	base := filepath.Base(keep)
	prefix := base[:strings.LastIndex(base, "-")+1]
	old, err := filepath.Glob(filepath.Join(filepath.Dir(keep), prefix+"*.tar"))
	if err != nil {
		return err
	}
	for _, p := range old {
		rest := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(p), prefix), ".tar")
		if p != keep && !strings.Contains(rest, "-") {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	return nil
}
