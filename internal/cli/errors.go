package cli

import (
	"errors"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/apply"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/plan"
)

// targetUsage words a target the library refused in terms of this
// command's flags, as a usage error; nil when err is about something else.
func targetUsage(err error) error {
	var te *plan.TargetError
	if !errors.As(err, &te) {
		return nil
	}
	switch te.Err {
	case plan.ErrSlotRequired:
		return UsageErrorf("%w: pass --slot", te)
	case plan.ErrSlotNotAllowed:
		return UsageErrorf("%w: drop --slot", te)
	}
	return AsUsage(te)
}

// withFlags is err's message with the remedies the library words in its
// own terms put in terms of reconcile's flags: --force-conflicts for fields
// another manager owns, --recreate for an immutable field, --lock-wait for
// a namespace another run holds.
func withFlags(err error) string {
	msg := err.Error()
	var ce *apply.ConflictError
	if errors.As(err, &ce) {
		msg = strings.Replace(msg, ce.Error(), ce.Problem()+"; re-run with --force-conflicts to take them over, or drop them from the manifest", 1)
	}
	var ie *apply.ImmutableError
	if errors.As(err, &ie) {
		msg = strings.Replace(msg, ie.Error(), ie.Problem()+"; re-run with --recreate to delete and re-create it (its data and pods go with it)", 1)
	}
	var le *apply.LockedError
	if errors.As(err, &le) {
		msg = strings.Replace(msg, le.Error(), le.Problem()+": wait for it to finish or pass --lock-wait", 1)
	}
	return msg
}

// flagWorded is an error whose message withFlags has worded.
type flagWorded struct{ err error }

func (e *flagWorded) Error() string { return withFlags(e.err) }
func (e *flagWorded) Unwrap() error { return e.err }

// wordFlags returns err with its message worded by withFlags; nil for nil.
func wordFlags(err error) error {
	if err == nil {
		return nil
	}
	return &flagWorded{err: err}
}
