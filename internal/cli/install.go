package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/bootstrap/remote"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// InstallOptions are the inputs of `install`.
type InstallOptions struct {
	IO         IOStreams
	Prompter   Prompter
	LookupEnv  func(string) (string, bool)
	Factory    *Factory
	ConfigPath string

	sshFlags

	Env           string
	Slot          string
	NoDeploy      bool
	From          string
	Only          []string
	DryRun        bool
	EventsFile    string
	KubeconfigOut string
	Yes           bool
}

// sshFlags say how to reach the server: install's, and reconcile --ssh's.
type sshFlags struct {
	Host           string
	Port           int
	User           string
	Identity       string
	HostKey        string
	NonInteractive bool
	// DialContext replaces the TCP dialer (benchmarks count connections).
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// NewCmdInstall builds `install`. runF replaces the run function in tests.
func NewCmdInstall(f *Factory, configPath func() string, runF func(context.Context, *InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{}
	cmd := &cobra.Command{
		Use:   "install [--host HOST] [--env NAME | --no-deploy] [flags]",
		Short: "Prepare a clean server over SSH, then deploy an environment to it",
		Long: `Install connects to a clean server over SSH (one connection for the whole
install), runs the bootstrap steps of spec.bootstrap.steps on it in order, as
root (a non-root user needs passwordless sudo), then deploys --env through
the same connection.

The server is --host, --port, --user and -i, else the variables that
spec.bootstrap.target names (config file or environment), else what
~/.ssh/config says for the host, else the variables' declared defaults, else
port 22 and the current user. Keys come from ssh-agent ($SSH_AUTH_SOCK) and
the identity files. The host key is checked against ~/.ssh/known_hosts: an
unknown key is shown by its SHA256 fingerprint and accepted only when
confirmed on a terminal or pinned with --host-key, then recorded; a changed
key is always refused.

Missing required variables are asked on a terminal (secrets without echo)
and saved to the config file (mode 0600) before anything remote happens;
without a terminal, or with --non-interactive, install fails listing them.

Each step runs in a process group of its own under a host-wide lock, with
its variables on stdin (never in arguments, environments or files). A
finished step leaves a marker with the hash of its script, files and
inputs: a second install skips finished unchanged steps and resumes at the
failed or changed one. --from and --only run steps even when unchanged. A
dropped connection, a step's timeout or Ctrl-C kill the step's whole group.

Then the cluster's kubeconfig is read from the server and the environment
is reconciled with client-go dialling the API through the SSH connection: no
port is opened. --kubeconfig-out writes a kubeconfig for later use and prints
the ssh -L line that serves it.

Exit codes: 0 success, 1 invalid input or failed operation, 2 usage error,
130 interrupted.`,
		Example: `  # what would run, contacting nothing
  codex-bootstrap install --host 203.0.113.10 --env staging --dry-run

  # install and deploy staging, pinning the server's host key
  codex-bootstrap install --host 203.0.113.10 --host-key SHA256:... --env staging

  # run the steps only, from prepare-host on, recording events
  codex-bootstrap install --no-deploy --from prepare-host --events install.jsonl`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.IO, opts.Prompter, opts.LookupEnv, opts.Factory = f.IO, f.prompter(), f.LookupEnv, f
			opts.ConfigPath = configPath()
			if opts.Env == "" && !opts.NoDeploy {
				return UsageErrorf("--env is required (or --no-deploy to run the bootstrap steps only)")
			}
			if opts.Env != "" && opts.NoDeploy {
				return UsageErrorf("--env and --no-deploy exclude each other")
			}
			if opts.From != "" && len(opts.Only) > 0 {
				return UsageErrorf("--from and --only exclude each other")
			}
			if opts.KubeconfigOut != "" && opts.NoDeploy {
				return UsageErrorf("--kubeconfig-out needs a deploy (drop --no-deploy)")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInstall(cmd.Context(), opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Host, "host", "", "server address or ~/.ssh/config alias (default: the target's host variable)")
	fl.IntVar(&opts.Port, "port", 0, "SSH port (default: the target's port variable, ~/.ssh/config, 22)")
	fl.StringVar(&opts.User, "user", "", "SSH user; not root needs passwordless sudo (default: the target's user variable, ~/.ssh/config, the current user)")
	fl.StringVarP(&opts.Identity, "identity", "i", "", "private key file (default: the target's key variable, ~/.ssh/config, ~/.ssh/id_*; ssh-agent keys are tried first)")
	fl.StringVar(&opts.HostKey, "host-key", "", "accept the server's host key only if its fingerprint is this SHA256:...")
	fl.StringVar(&opts.Env, "env", "", "environment to deploy after the steps (required unless --no-deploy)")
	fl.StringVar(&opts.Slot, "slot", "", "slot of a slot environment")
	fl.BoolVar(&opts.NoDeploy, "no-deploy", false, "stop after the bootstrap steps")
	fl.StringVar(&opts.From, "from", "", "run this step and every later one, even if finished")
	fl.StringSliceVar(&opts.Only, "only", nil, "run only these steps (repeat or comma-separate), even if finished")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "check everything install needs and print the steps; contacts nothing")
	fl.BoolVar(&opts.NonInteractive, "non-interactive", false, "never ask: fail on missing variables and unknown host keys")
	fl.StringVar(&opts.EventsFile, "events", "", "write progress events (steps, then the deploy) to this file as JSON lines")
	fl.StringVar(&opts.KubeconfigOut, "kubeconfig-out", "", "write a kubeconfig for the installed cluster here (0600), served by the printed ssh -L line")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask before deploying a prod environment")
	return cmd
}

// installPlan is what install works from once its inputs are complete.
type installPlan struct {
	prj    *servicescfg.Project
	values *config.Values
	steps  []remote.Step
	plan   *plan.Plan // nil with --no-deploy
	target remote.Target
}

func runInstall(ctx context.Context, opts *InstallOptions) error {
	ip, err := prepareInstall(ctx, opts)
	if err != nil {
		return err
	}
	if opts.DryRun {
		printInstallPlan(opts, ip)
		return nil
	}
	events, closeEvents, err := openEvents(opts.EventsFile)
	if err != nil {
		return err
	}
	defer closeEvents()

	fmt.Fprintf(opts.IO.ErrOut, "connecting to %s@%s%s\n", ip.target.User, ip.target.Addr(), through(ip.target))
	client, err := remote.Dial(ctx, opts.sshFlags.dialConfig(opts.IO, opts.Prompter, opts.LookupEnv, ip.target))
	if err != nil {
		return wordInstallError(err)
	}
	defer client.Close()
	res, err := remote.Run(ctx, client, ip.steps, remote.RunOptions{
		Project: ip.prj.Stack().Spec.Project, Selection: remote.Selection{From: opts.From, Only: opts.Only},
		Stdout: opts.IO.Out, Stderr: opts.IO.ErrOut, Observer: events,
	})
	printStepSummary(opts, res)
	if err != nil {
		return err
	}
	if opts.NoDeploy {
		fmt.Fprintf(opts.IO.Out, "bootstrap steps done on %s (--no-deploy: nothing deployed)\n", ip.target.Host)
		return nil
	}
	return deployOverSSH(ctx, opts, ip, client, events)
}

// prepareInstall loads the stack and the config, asks for what is missing,
// and renders the steps: everything before contacting the server.
func prepareInstall(ctx context.Context, opts *InstallOptions) (*installPlan, error) {
	prj, err := servicescfg.OpenContext(ctx, opts.ConfigPath, servicescfg.Options{LookupEnv: opts.LookupEnv})
	if err != nil {
		return nil, reportDiagnostics(opts.IO, err)
	}
	if err := prj.Problems(); err != nil {
		return nil, reportDiagnostics(opts.IO, err)
	}
	s := prj.Stack()
	if s.Spec.Bootstrap == nil || len(s.Spec.Bootstrap.Steps) == 0 {
		return nil, fmt.Errorf("%s declares no bootstrap steps (spec.bootstrap.steps): nothing to install", opts.ConfigPath)
	}
	if err := completeConfig(ctx, opts, s); err != nil {
		return nil, err
	}
	values, err := prj.Config()
	if err != nil {
		return nil, reportDiagnostics(opts.IO, err)
	}
	env := opts.Env
	if env == "" {
		env = renderEnvironment(s)
	}
	p, err := prj.Plan(ctx, servicescfg.Target{Env: env, Slot: opts.Slot})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if uerr := targetUsage(err); uerr != nil {
			return nil, uerr
		}
		return nil, reportDiagnostics(opts.IO, err)
	}
	scripts, err := prj.BootstrapScripts(ctx, p)
	if err != nil {
		return nil, reportDiagnostics(opts.IO, err)
	}
	steps, err := remote.StepsOf(s, scripts, values)
	if err != nil {
		return nil, err
	}
	target, err := opts.sshFlags.resolveTarget(opts.LookupEnv, s, values)
	if err != nil {
		return nil, err
	}
	ip := &installPlan{prj: prj, values: values, steps: steps, target: target}
	if !opts.NoDeploy {
		ip.plan = p
	}
	return ip, nil
}

// renderEnvironment is the environment whose template context renders the
// steps when install deploys none: the first that is not per-slot.
func renderEnvironment(s *stack.Stack) string {
	names := s.EnvironmentNames()
	for _, n := range names {
		if r, err := s.ResolveEnvironment(n); err == nil && !r.Slots {
			return n
		}
	}
	return names[0]
}

// resolveTarget merges flags, config values, ~/.ssh/config and defaults.
func (fl sshFlags) resolveTarget(env func(string) (string, bool), s *stack.Stack, values *config.Values) (remote.Target, error) {
	set, defaults, err := remote.TargetValues(s, values)
	if err != nil {
		return remote.Target{}, err
	}
	flags := remote.Target{Host: fl.Host, Port: fl.Port, User: fl.User}
	if fl.Identity != "" {
		flags.IdentityFiles = []string{fl.Identity}
	}
	home := lookup(env, "HOME")
	src := remote.TargetSources{Flags: flags, Config: set, Defaults: defaults, Home: home, CurrentUser: lookup(env, "USER")}
	if home != "" {
		src.SSHConfigPath = filepath.Join(home, ".ssh", "config")
		data, err := os.ReadFile(src.SSHConfigPath)
		switch {
		case err == nil:
			src.SSHConfig = data
		case !errors.Is(err, os.ErrNotExist):
			return remote.Target{}, fmt.Errorf("read %s: %w", src.SSHConfigPath, err)
		}
	}
	return remote.ResolveTarget(src)
}

func lookup(f func(string) (string, bool), name string) string {
	if f == nil {
		return ""
	}
	v, _ := f(name)
	return v
}

func (fl sshFlags) dialConfig(ios IOStreams, p Prompter, env func(string) (string, bool), t remote.Target) remote.Config {
	home := lookup(env, "HOME")
	cfg := remote.Config{
		Target:      t,
		KnownHosts:  filepath.Join(home, ".ssh", "known_hosts"),
		HostKeyPin:  fl.HostKey,
		AgentSocket: lookup(env, "SSH_AUTH_SOCK"),
		Home:        home,
		DialContext: fl.DialContext,
	}
	if ios.CanPrompt() && !fl.NonInteractive {
		cfg.Prompter = sshPrompter{p: p}
	}
	return cfg
}

// sshPrompter asks the SSH questions through the CLI's prompter.
type sshPrompter struct{ p Prompter }

func (s sshPrompter) ConfirmHostKey(ctx context.Context, host, keyType, fp string) (bool, error) {
	return s.p.Confirm(ctx, fmt.Sprintf("The host key of %s is not known yet.\n%s key fingerprint is %s.\nCheck it on the server (ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub). Trust it and continue?", host, keyType, fp), false)
}

func (s sshPrompter) Passphrase(ctx context.Context, file string) ([]byte, error) {
	v, err := s.p.Password(ctx, "Passphrase for "+file+":")
	return []byte(v), err
}

// wordInstallError adds the CLI's remedy to errors the library words in its
// own terms.
func wordInstallError(err error) error {
	var ue *remote.UnknownHostKeyError
	var je *remote.JumpHostError
	switch {
	case errors.As(err, &je) && errors.As(err, &ue) && !ue.Declined:
		// --host-key pins the server's key, not a jump host's.
		return fmt.Errorf("%w, then run install on a terminal to confirm it, or record it in known_hosts (ssh %s once)", err, je.Jump.Host)
	case errors.As(err, &ue) && !ue.Declined:
		return fmt.Errorf("%w, then pass --host-key %s, or run install on a terminal to confirm it", err, ue.Fingerprint)
	}
	return err
}

// through names the jump hosts a target is reached through, if any.
func through(t remote.Target) string {
	if via := t.Via(); via != "" {
		return " through " + via
	}
	return ""
}

func openEvents(path string) (apply.Observer, func(), error) {
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, fmt.Errorf("events file: %w", err)
	}
	return apply.NewJSONLines(f), func() { _ = f.Close() }, nil
}

func printInstallPlan(opts *InstallOptions, ip *installPlan) {
	w := opts.IO.Out
	fmt.Fprintf(w, "install %s on %s@%s%s\n", ip.prj.Stack().Spec.Project, ip.target.User, ip.target.Addr(), through(ip.target))
	fmt.Fprintf(w, "bootstrap steps, in order:\n")
	for i, s := range ip.steps {
		var vars, files []string
		for _, v := range s.Vars {
			vars = append(vars, v.Name)
		}
		for _, f := range s.Files {
			files = append(files, f.Name)
		}
		line := fmt.Sprintf("  %d. %s", i+1, s.Name)
		if s.Timeout > 0 {
			line += " (timeout " + s.Timeout.String() + ")"
		}
		if len(vars) > 0 {
			line += "  vars: " + strings.Join(vars, ", ")
		}
		if len(files) > 0 {
			line += "  files: " + strings.Join(files, ", ")
		}
		fmt.Fprintln(w, line)
	}
	if ip.plan != nil {
		fmt.Fprintf(w, "then deploy environment %s into namespace %s (%d nodes) through the SSH connection\n", envLabel(ip.plan), ip.plan.Namespace, len(ip.plan.Nodes))
	}
}

func printStepSummary(opts *InstallOptions, res []remote.StepResult) {
	for _, r := range res {
		line := fmt.Sprintf("%-8s %s", r.Status, r.Name)
		if r.Status == apply.StatusSkipped {
			line += " (" + r.Reason + ")"
		} else {
			line += " in " + r.Duration.Round(10*time.Millisecond).String()
		}
		fmt.Fprintln(opts.IO.ErrOut, line)
	}
}
