// Command testbox is the one program of the minimal test image that the
// smoke tests run on the real node: an HTTP server whose readiness can pass
// or fail, an exit with a chosen code and message, a memory eater, an HTTP
// client and a few file and identity commands for exec.
//
//	testbox serve [-addr :8080] [-ready=false] [-text TEXT]
//	testbox exit [-log LINE]... CODE [MESSAGE...]
//	                                    LINEs, then the message, to stdout; the
//	                                    message to /dev/termination-log
//	testbox sleep [DURATION]            until SIGTERM (or DURATION)
//	testbox alloc MIB                   touch MIB mebibytes, then sleep
//	testbox get [-tries N] URL          print the body; exit 1 when it fails
//	testbox lookup NAME                 print the addresses of NAME
//	testbox echo WORDS... | id | cat PATH | write PATH TEXT | stat PATH...
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: testbox serve|exit|sleep|alloc|get|lookup|echo|id|cat|write|stat ...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:], os.Stdout); err != nil {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(int(ex))
		}
		fmt.Fprintln(os.Stderr, "testbox:", err)
		os.Exit(1)
	}
}

// exitError asks main to exit with that code after the command printed its
// own message.
type exitError int

func (e exitError) Error() string { return "exit " + strconv.Itoa(int(e)) }

func run(cmd string, args []string, out io.Writer) error {
	switch cmd {
	case "serve":
		return serve(args, out)
	case "exit":
		return exit(args, out)
	case "sleep":
		return sleep(args)
	case "alloc":
		return alloc(args, out)
	case "get":
		return get(args, out)
	case "lookup":
		return lookup(args, out)
	case "echo":
		_, err := fmt.Fprintln(out, strings.Join(args, " "))
		return err
	case "id":
		return id(out)
	case "cat":
		return cat(args, out)
	case "write":
		return write(args, out)
	case "stat":
		return stat(args, out)
	}
	return fmt.Errorf("unknown command %q", cmd)
}

// terminated is closed on SIGTERM or SIGINT: every long-running command
// then exits 0 at once (a pod's grace period is not waited out).
func terminated() <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGTERM, syscall.SIGINT)
	return c
}

func serve(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", ":8080", "listen address")
	ready := fs.Bool("ready", true, "whether /ready answers 200 (else 503)")
	text := fs.String("text", "", "body of / (default: the host name)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	body := *text
	if body == "" {
		body, _ = os.Hostname()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !*ready {
			http.Error(w, "not ready (started with -ready=false)", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, body) })
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "serving on %s (ready=%t)\n", ln.Addr(), *ready)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-terminated()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// lines is a flag that may be given many times.
type lines []string

func (l *lines) String() string     { return strings.Join(*l, "\n") }
func (l *lines) Set(v string) error { *l = append(*l, v); return nil }

func exit(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("exit", flag.ContinueOnError)
	var logLines lines
	fs.Var(&logLines, "log", "a line to print first (repeatable)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	args = fs.Args()
	if len(args) == 0 {
		return errors.New("usage: exit [-log LINE]... CODE [MESSAGE...]")
	}
	for _, l := range logLines {
		fmt.Fprintln(out, l)
	}
	code, err := strconv.Atoi(args[0])
	if err != nil || code < 0 || code > 255 {
		return fmt.Errorf("exit code %q is not a number from 0 to 255", args[0])
	}
	if msg := strings.Join(args[1:], " "); msg != "" {
		fmt.Fprintln(out, msg)
		// Kubernetes shows this file as the container's termination message.
		_ = os.WriteFile("/dev/termination-log", []byte(msg+"\n"), 0o644)
	}
	return exitError(code)
}

func sleep(args []string) error {
	var limit <-chan time.Time
	if len(args) > 0 {
		d, err := time.ParseDuration(args[0])
		if err != nil {
			return err
		}
		limit = time.After(d)
	}
	select {
	case <-terminated():
	case <-limit:
	}
	return nil
}

// alloc touches every page of MIB mebibytes, so the memory is really used
// (and a smaller limit kills the container), then sleeps.
func alloc(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: alloc MIB")
	}
	mib, err := strconv.Atoi(args[0])
	if err != nil || mib <= 0 {
		return fmt.Errorf("alloc: %q is not a positive number of MiB", args[0])
	}
	chunks := make([][]byte, 0, mib)
	for i := 1; i <= mib; i++ {
		b := make([]byte, 1<<20)
		for j := 0; j < len(b); j += 4096 {
			b[j] = 1
		}
		chunks = append(chunks, b)
		if i%16 == 0 || i == mib {
			fmt.Fprintf(out, "allocated %d MiB\n", i)
		}
	}
	fmt.Fprintf(out, "holding %d MiB\n", len(chunks))
	return sleep(nil)
}

func get(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	tries := fs.Int("tries", 30, "attempts, one second apart")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("usage: get [-tries N] URL")
	}
	client := &http.Client{Timeout: 3 * time.Second}
	var last error
	for i := 0; i < *tries; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		resp, err := client.Get(fs.Arg(0))
		if err != nil {
			last = err
			continue
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == http.StatusOK {
			_, err = out.Write(body)
			return err
		}
		last = fmt.Errorf("%s: %s", fs.Arg(0), resp.Status)
	}
	return fmt.Errorf("get failed after %d tries: %w", *tries, last)
}

func lookup(args []string, out io.Writer) error {
	if len(args) != 1 {
		return errors.New("usage: lookup NAME")
	}
	addrs, err := net.LookupHost(args[0])
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(out, strings.Join(addrs, " "))
	return err
}

func id(out io.Writer) error {
	groups, err := os.Getgroups()
	if err != nil {
		return err
	}
	g := make([]string, len(groups))
	for i, v := range groups {
		g[i] = strconv.Itoa(v)
	}
	_, err = fmt.Fprintf(out, "uid=%d gid=%d groups=%s\n", os.Getuid(), os.Getgid(), strings.Join(g, ","))
	return err
}

func cat(args []string, out io.Writer) error {
	for _, p := range args {
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if _, err := out.Write(b); err != nil {
			return err
		}
	}
	return nil
}

func write(args []string, out io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: write PATH TEXT")
	}
	if err := os.WriteFile(args[0], []byte(args[1]+"\n"), 0o664); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "wrote %s\n", args[0])
	return err
}

// stat prints owner, group and permission bits, as the tests compare them.
func stat(args []string, out io.Writer) error {
	for _, p := range args {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("stat %s: no owner information", p)
		}
		fmt.Fprintf(out, "%s uid=%d gid=%d mode=%v\n", p, st.Uid, st.Gid, fi.Mode())
	}
	return nil
}
