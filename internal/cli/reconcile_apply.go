package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/config"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// runApply applies the plan to the cluster and reports progress.
func runApply(ctx context.Context, opts *ReconcileOptions, p *plan.Plan, values *config.Values) error {
	if err := confirmProd(ctx, opts, p); err != nil {
		return err
	}
	interactive := opts.IO.IsStdoutTTY()
	prog := newProgress(opts.IO.Out, p, interactive)
	logger := opts.Factory.Logger()
	if interactive && opts.IO.IsStderrTTY() {
		// Logs on the terminal of the live table go above it, or its next
		// redraw would overwrite them.
		logger = slog.New(slog.NewTextHandler(prog.Writer(opts.IO.ErrOut), &slog.HandlerOptions{Level: minLevel(ctx, logger)}))
	}
	cfg, err := clusterConfig(opts.cluster(), logger)
	if err != nil {
		return err
	}

	observers := apply.Observers{prog}
	if opts.Events != nil {
		observers = append(observers, opts.Events)
	}
	var events *apply.JSONLines
	if opts.EventsFile != "" {
		f, err := os.Create(opts.EventsFile)
		if err != nil {
			return fmt.Errorf("events file: %w", err)
		}
		defer f.Close()
		events = apply.NewJSONLines(f)
		observers = append(observers, events)
	}

	fmt.Fprintf(opts.IO.Out, "reconciling %s (environment %s) into namespace %s on %s\n", p.Stack, envLabel(p), p.Namespace, cfg.Host)
	stopProg := prog.start(ctx)
	res, err := apply.Reconcile(ctx, cfg, p, apply.Options{
		Parallel:       opts.Parallel,
		Timeout:        opts.Timeout,
		ForceConflicts: opts.ForceConflicts,
		Recreate:       opts.Recreate,
		NoPrune:        opts.NoPrune,
		Values:         values,
		Observer:       observers,
		Logger:         logger,
		LockWait:       opts.LockWait,
	})
	stopProg()
	if events != nil {
		if werr := events.Err(); werr != nil {
			logger.Warn("writing the events file", "file", opts.EventsFile, "err", werr)
		}
	}
	var locked *apply.LockedError
	if res != nil && !errors.As(err, &locked) { // refused at the lease: nothing was tried
		writeSummary(opts.IO.Out, res, err)
	}
	var nerr *apply.NodesError
	if errors.As(err, &nerr) {
		// The summary has listed each failure with its reason.
		return &silentError{err: err}
	}
	return wordFlags(err)
}

func envLabel(p *plan.Plan) string {
	if p.Slot != "" {
		return p.Environment + ", slot " + p.Slot
	}
	return p.Environment
}

// confirmProd asks before touching a production environment: on a
// terminal the operator types the namespace; without one, --yes is needed.
func confirmProd(ctx context.Context, opts *ReconcileOptions, p *plan.Plan) error {
	if !p.Production || opts.Yes {
		return nil
	}
	if !opts.IO.CanPrompt() {
		return UsageErrorf("environment %s is production: pass --yes to reconcile it without a terminal", p.Environment)
	}
	answer, err := opts.Prompter.Input(ctx, fmt.Sprintf("Environment %s is production. Type the namespace (%s) to reconcile it:", p.Environment, p.Namespace), "")
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, ErrNoAnswer):
		return UsageErrorf("no confirmation given")
	case err != nil:
		return UsageErrorf("no confirmation given: %w", err)
	case answer != p.Namespace:
		return UsageErrorf("confirmation %q does not match namespace %s: nothing done", answer, p.Namespace)
	}
	return nil
}

// clusterAccess is how a command reaches the cluster: its --kubeconfig
// and --context, KUBECONFIG from its environment, or a config its caller
// made (install's SSH tunnel, tests).
type clusterAccess struct {
	kubeconfig, context string
	lookupEnv           func(string) (string, bool)
	restConfig          func() (*rest.Config, error)
}

func (o *ReconcileOptions) cluster() clusterAccess {
	return clusterAccess{o.Kubeconfig, o.Context, o.LookupEnv, o.RESTConfig}
}

// clusterConfig is restConfig with client-go's logs (klog) and the API
// server's warnings routed to logger, so that nothing else writes to the
// terminal.
func clusterConfig(a clusterAccess, logger *slog.Logger) (*rest.Config, error) {
	klog.SetSlogLogger(logger)
	cfg, err := restConfig(a)
	if err != nil {
		return nil, err
	}
	cfg = rest.CopyConfig(cfg)
	cfg.WarningHandler = slogWarnings{logger}
	return cfg, nil
}

// restConfig loads the cluster config the way kubectl does: --kubeconfig,
// else $KUBECONFIG, else ~/.kube/config, else the pod's service account.
func restConfig(a clusterAccess) (*rest.Config, error) {
	if a.restConfig != nil {
		return a.restConfig()
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if a.lookupEnv != nil {
		if v, ok := a.lookupEnv(clientcmd.RecommendedConfigPathEnvVar); ok && v != "" {
			rules.Precedence = filepath.SplitList(v)
		}
	}
	rules.ExplicitPath = a.kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: a.context}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes config: %w (pass --kubeconfig or set KUBECONFIG)", err)
	}
	return cfg, nil
}

// minLevel is the lowest level log enables.
func minLevel(ctx context.Context, log *slog.Logger) slog.Level {
	for _, l := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		if log.Enabled(ctx, l) {
			return l
		}
	}
	return slog.LevelWarn
}

// slogWarnings sends API server warnings to the logger.
type slogWarnings struct{ log *slog.Logger }

func (w slogWarnings) HandleWarningHeader(code int, agent, text string) {
	if code == 299 && text != "" {
		w.log.Warn("API server warning", "warning", text)
	}
}
