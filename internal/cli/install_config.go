package cli

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// completeConfig asks for the required variables that have no value and
// saves the answers to the config file, before anything remote happens.
// Without a terminal (or with --non-interactive or --dry-run) it fails
// listing them. The file is written once, after the last answer, so an
// interrupted install leaves it exactly as it was.
func completeConfig(ctx context.Context, opts *InstallOptions, s *stack.Stack) error {
	values, file, err := config.Load(s, opts.LookupEnv)
	if err != nil {
		return reportDiagnostics(opts.IO, err)
	}
	missing := missingForInstall(opts, s, values)
	if len(missing) == 0 {
		return nil
	}
	path := config.Path(s)
	if opts.DryRun || opts.NonInteractive || !opts.IO.CanPrompt() {
		return missingError(s, missing)
	}
	fmt.Fprintf(opts.IO.ErrOut, "%d required values are missing; answers are saved to %s\n", len(missing), s.Spec.Bootstrap.ConfigFile)
	secret := false
	for _, v := range missing {
		val, err := ask(ctx, opts.Prompter, v)
		if err != nil {
			return err
		}
		if err := file.Set(v.Name, val); err != nil {
			return err
		}
		secret = secret || v.Secret
	}
	if secret && tracked(path) {
		return fmt.Errorf("%s is tracked by git: refusing to write secret values into it; add it to .gitignore and untrack it (git rm --cached %s)", path, path)
	}
	if err := file.WriteFile(path); err != nil {
		return fmt.Errorf("save the answers to %s: %w", path, err)
	}
	return nil
}

// missingForInstall is the required variables without a value, less those
// of the target that flags give.
func missingForInstall(opts *InstallOptions, s *stack.Stack, values *config.Values) []*stack.Variable {
	given := map[string]bool{}
	if t := s.Spec.Bootstrap.Target; t != nil {
		given[t.Host] = opts.Host != ""
		given[t.Port] = opts.Port != 0
		given[t.User] = opts.User != ""
		given[t.IdentityFile] = opts.Identity != ""
	}
	var out []*stack.Variable
	for _, v := range values.Missing() {
		if !given[v.Name] {
			out = append(out, v)
		}
	}
	return out
}

func missingError(s *stack.Stack, missing []*stack.Variable) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%d required values are missing: set them in %s or the environment, or run install on a terminal to be asked:", len(missing), s.Spec.Bootstrap.ConfigFile)
	for _, v := range missing {
		fmt.Fprintf(&b, "\n  %s", v.Name)
		if v.Secret {
			b.WriteString(" (secret)")
		}
		if v.Description != "" {
			b.WriteString(": " + v.Description)
		}
	}
	return errors.New(b.String())
}

// ask asks for one variable until the answer is not empty and matches its
// pattern.
func ask(ctx context.Context, p Prompter, v *stack.Variable) (string, error) {
	question := v.Name
	if v.Description != "" {
		question += " — " + v.Description
	}
	var re *regexp.Regexp
	if v.Pattern != "" {
		re, _ = regexp.Compile("^(?:" + v.Pattern + ")$")
	}
	for {
		var val string
		var err error
		if v.Secret {
			val, err = p.Password(ctx, question+":")
		} else {
			val, err = p.Input(ctx, question+":", v.Default)
		}
		switch {
		case ctx.Err() != nil:
			return "", ctx.Err()
		case err != nil:
			return "", fmt.Errorf("no value for %s: %w", v.Name, err)
		case val == "":
			question = v.Name + " is required; enter a value"
		case re != nil && !re.MatchString(val):
			question = fmt.Sprintf("%s does not match the pattern %s; enter it again", v.Name, v.Pattern)
		default:
			return val, nil
		}
	}
}

// tracked tells whether git tracks path (false when git is not there).
func tracked(path string) bool {
	cmd := exec.Command("git", "-C", filepath.Dir(path), "ls-files", "--error-unmatch", filepath.Base(path))
	return cmd.Run() == nil
}
