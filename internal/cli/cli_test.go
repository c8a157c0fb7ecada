package cli

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// run executes a command line with buffers and returns the exit code and
// both streams.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	f := &Factory{
		IO:        IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut},
		LookupEnv: func(string) (string, bool) { return "", false },
	}
	code := Run(context.Background(), f, args)
	return code, out.String(), errOut.String()
}

func TestUsageErrorsExit2(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"deploy"}, `unknown command "deploy"`},
		{"unknown flag", []string{"validate", "--nope"}, "unknown flag: --nope"},
		{"reconcile without env", []string{"reconcile", "--dry-run"}, "--env is required"},
		{"bad output", []string{"reconcile", "--env", "dev", "--dry-run", "-o", "yaml"}, `invalid --output "yaml"`},
		{"output without dry-run", []string{"reconcile", "--env", "dev", "-o", "json"}, "--output and --output-dir are for --dry-run"},
		{"diff with dry-run", []string{"reconcile", "--env", "dev", "--diff", "--dry-run"}, "--diff and --dry-run exclude each other"},
		{"exit-code without diff", []string{"reconcile", "--env", "dev", "--exit-code"}, "--exit-code is for --diff"},
		{"diff with output-dir", []string{"reconcile", "--env", "dev", "--diff", "--output-dir", "x"}, "--output-dir is for --dry-run"},
		{"diff with events", []string{"reconcile", "--env", "dev", "--diff", "--events", "e.jsonl"}, "--diff applies nothing"},
		{"diff as a picture", []string{"reconcile", "--env", "dev", "--diff", "-o", "mermaid"}, "--output mermaid draws the plan: it is for --dry-run"},
		{"slot without env", []string{"validate", "--slot", "1"}, "--slot needs --env"},
		{"positional", []string{"validate", "extra"}, "takes no arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := run(t, tt.args...)
			if code != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr:\n%s", code, ExitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.want)
			}
		})
	}
}

func TestHelpReadsLikeAManual(t *testing.T) {
	for _, cmd := range []string{"validate", "reconcile", "version"} {
		code, out, _ := run(t, cmd, "--help")
		if code != 0 {
			t.Fatalf("%s --help exit %d", cmd, code)
		}
		for _, want := range []string{"Usage:", "--config"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s --help lacks %q:\n%s", cmd, want, out)
			}
		}
		if cmd != "version" && !strings.Contains(out, "Exit codes") {
			t.Errorf("%s --help does not document exit codes", cmd)
		}
	}
	code, out, _ := run(t, "--help")
	if code != 0 || !strings.Contains(out, "validate") || !strings.Contains(out, "reconcile") {
		t.Errorf("root help (exit %d):\n%s", code, out)
	}
}

func TestFlagsReachOptions(t *testing.T) {
	var got *ReconcileOptions
	f := &Factory{IO: IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
	cfg := "custom/services.yaml"
	cmd := NewCmdReconcile(f, func() string { return cfg }, func(_ context.Context, o *ReconcileOptions) error {
		got = o
		return nil
	})
	cmd.SetArgs([]string{"--env", "ai-slot", "--slot", "3", "--dry-run", "-o", "json", "--output-dir", "out"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.Env != "ai-slot" || got.Slot != "3" || !got.DryRun || got.Output != "json" || got.OutputDir != "out" || got.ConfigPath != cfg {
		t.Errorf("options = %+v", got)
	}
}

// TestDiffParallel: --parallel bounds --diff's comparisons only when given;
// otherwise the library's default applies.
func TestDiffParallel(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--env", "dev", "--diff"}, 0},
		{[]string{"--env", "dev", "--diff", "--parallel", "3"}, 3},
		{[]string{"--env", "dev", "--parallel", "3"}, 0},
	} {
		var got *ReconcileOptions
		f := &Factory{IO: IOStreams{Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}}
		cmd := NewCmdReconcile(f, func() string { return "services.yaml" }, func(_ context.Context, o *ReconcileOptions) error {
			got = o
			return nil
		})
		cmd.SetArgs(tc.args)
		if err := cmd.Execute(); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got.DiffParallel != tc.want {
			t.Errorf("%v: DiffParallel = %d, want %d", tc.args, got.DiffParallel, tc.want)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := run(t, "version")
	if code != 0 || !strings.HasPrefix(out, "codex-bootstrap ") {
		t.Errorf("version: exit %d, %q", code, out)
	}
}
