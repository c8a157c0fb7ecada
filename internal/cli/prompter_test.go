package cli

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// TestConfirmProd runs confirmProd on terminal and non-terminal streams,
// with the terminal prompter reading what the operator types.
func TestConfirmProd(t *testing.T) {
	prod := &plan.Plan{Environment: "prod", Namespace: "shop-prod", Runtime: stack.RuntimeProd, Production: true}
	dev := &plan.Plan{Environment: "dev", Namespace: "shop-dev", Runtime: "non-prod"}
	tests := []struct {
		name             string
		plan             *plan.Plan
		stdinTTY, errTTY bool
		yes              bool
		typed            string
		wantErr          string // "" for success
		wantUsage        bool
		wantPrompt       bool
	}{
		{name: "not prod", plan: dev},
		{name: "prod with --yes", plan: prod, yes: true},
		{name: "prod without a terminal", plan: prod, wantErr: "environment prod is production: pass --yes to reconcile it without a terminal", wantUsage: true},
		{name: "prod with stdin a terminal, stderr not", plan: prod, stdinTTY: true, wantErr: "pass --yes", wantUsage: true},
		{name: "prod on a terminal, namespace typed", plan: prod, stdinTTY: true, errTTY: true, typed: "shop-prod\n", wantPrompt: true},
		{name: "prod on a terminal, spaces around", plan: prod, stdinTTY: true, errTTY: true, typed: "  shop-prod  \r\n", wantPrompt: true},
		{name: "prod on a terminal, last line without newline", plan: prod, stdinTTY: true, errTTY: true, typed: "shop-prod", wantPrompt: true},
		{name: "prod on a terminal, wrong namespace", plan: prod, stdinTTY: true, errTTY: true, typed: "shop-dev\n", wantPrompt: true,
			wantErr: `confirmation "shop-dev" does not match namespace shop-prod: nothing done`, wantUsage: true},
		{name: "prod on a terminal, empty line", plan: prod, stdinTTY: true, errTTY: true, typed: "\n", wantPrompt: true,
			wantErr: `confirmation "" does not match namespace shop-prod: nothing done`, wantUsage: true},
		{name: "prod on a terminal, input ends", plan: prod, stdinTTY: true, errTTY: true, typed: "", wantPrompt: true,
			wantErr: "no confirmation given", wantUsage: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, in, _, errOut := NewTestIOStreams()
			ios.SetStdinTTY(tt.stdinTTY)
			ios.SetStderrTTY(tt.errTTY)
			in.WriteString(tt.typed)
			opts := &ReconcileOptions{IO: ios, Prompter: newPrompter(ios), Yes: tt.yes}
			err := confirmProd(context.Background(), opts, tt.plan)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("confirmProd = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("confirmProd = %v, want %q", err, tt.wantErr)
			}
			if got := ExitCode(err) == ExitUsage; err != nil && got != tt.wantUsage {
				t.Errorf("usage error = %v, want %v", got, tt.wantUsage)
			}
			prompt := "Environment prod is production. Type the namespace (shop-prod) to reconcile it: "
			if got := errOut.String() == prompt; got != tt.wantPrompt {
				t.Errorf("stderr = %q, want the prompt: %v", errOut.String(), tt.wantPrompt)
			}
		})
	}
}

// TestConfirmProdInterrupted: Ctrl-C while the prompt waits ends it with
// the context's error (exit 130), not a usage error.
func TestConfirmProdInterrupted(t *testing.T) {
	ios, _, _, _ := NewTestIOStreams()
	ios.SetStdinTTY(true)
	ios.SetStderrTTY(true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts := &ReconcileOptions{IO: ios, Prompter: blockingPrompter{}}
	err := confirmProd(ctx, opts, &plan.Plan{Environment: "prod", Namespace: "p", Runtime: stack.RuntimeProd, Production: true})
	if !errors.Is(err, context.Canceled) || ExitCode(err) != ExitInterrupt {
		t.Errorf("confirmProd = %v (exit %d), want context.Canceled (exit %d)", err, ExitCode(err), ExitInterrupt)
	}
}

// blockingPrompter waits for an answer that never comes.
type blockingPrompter struct{}

func (blockingPrompter) Confirm(ctx context.Context, _ string, _ bool) (bool, error) {
	<-ctx.Done()
	return false, ctx.Err()
}

func (blockingPrompter) Input(ctx context.Context, _, _ string) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func (blockingPrompter) Password(ctx context.Context, _ string) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

func TestTerminalPrompter(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, typed string
		ask         func(p Prompter) (any, error)
		want        any
		wantErr     error
		wantErrOut  string
	}{
		{"confirm yes", "y\n", func(p Prompter) (any, error) { return p.Confirm(ctx, "Go on?", false) }, true, nil, "Go on? [y/N] "},
		{"confirm default", "\n", func(p Prompter) (any, error) { return p.Confirm(ctx, "Go on?", true) }, true, nil, "Go on? [Y/n] "},
		{"confirm asks again", "maybe\nno\n", func(p Prompter) (any, error) { return p.Confirm(ctx, "Go on?", true) }, false, nil, "Go on? [Y/n] Answer y or n.\nGo on? [Y/n] "},
		{"confirm no input", "", func(p Prompter) (any, error) { return p.Confirm(ctx, "Go on?", true) }, false, ErrNoAnswer, "Go on? [Y/n] "},
		{"input", "example.org\n", func(p Prompter) (any, error) { return p.Input(ctx, "Domain:", "") }, "example.org", nil, "Domain: "},
		{"input default", "\n", func(p Prompter) (any, error) { return p.Input(ctx, "Domain:", "local") }, "local", nil, "Domain: (local) "},
		{"password, not a terminal", "s3cret value\n", func(p Prompter) (any, error) { return p.Password(ctx, "Token:") }, "s3cret value", nil, "Token: "},
		{"password, no input", "", func(p Prompter) (any, error) { return p.Password(ctx, "Token:") }, "", ErrNoAnswer, "Token: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, in, out, errOut := NewTestIOStreams()
			in.WriteString(tt.typed)
			got, err := tt.ask(newPrompter(ios))
			if !errors.Is(err, tt.wantErr) || (err == nil && got != tt.want) {
				t.Errorf("got %v, %v; want %v, %v", got, err, tt.want, tt.wantErr)
			}
			if errOut.String() != tt.wantErrOut || out.Len() > 0 {
				t.Errorf("stderr %q, stdout %q; want stderr %q only", errOut.String(), out.String(), tt.wantErrOut)
			}
		})
	}
}

func TestTestIOStreams(t *testing.T) {
	ios, _, _, _ := NewTestIOStreams()
	if ios.IsStdinTTY() || ios.IsStdoutTTY() || ios.IsStderrTTY() || ios.CanPrompt() {
		t.Errorf("test streams start as terminals")
	}
	ios.SetStdinTTY(true)
	ios.SetStdoutTTY(true)
	if ios.CanPrompt() || !ios.IsStdoutTTY() {
		t.Errorf("CanPrompt needs stdin and stderr terminals")
	}
	ios.SetStderrTTY(true)
	if !ios.CanPrompt() {
		t.Errorf("CanPrompt with stdin and stderr terminals")
	}
	// Streams nobody set look at the real descriptors: buffers are not
	// terminals.
	if (IOStreams{In: strings.NewReader("")}).IsStdinTTY() {
		t.Errorf("a reader is not a terminal")
	}
}
