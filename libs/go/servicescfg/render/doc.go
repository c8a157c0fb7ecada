// Package render is the one template renderer of a stack: Kubernetes
// manifests, bootstrap step scripts, `when` conditions, namespace templates,
// and any prompt, config or hook template a platform renders through the
// library all go through an Engine, so they see the same partials, the same
// functions and the same Context.
//
// # Partials
//
// New reads the files named by spec.templates.partials once and keeps the
// named templates they define ({{ define "x" }} and {{ block "x" }}). Every
// render can call them with {{ template "x" . }} or {{ include "x" . }}. A
// render's own defines are visible to that render only. A name may be defined
// once: a second definition, in another partial, in the same file or in a
// manifest, is an error naming both places (Go's text/template would let the
// later one win silently). A partial may call a template that no partial
// defines, leaving it for each manifest that uses the partial to define.
//
// # Errors
//
// Every error is a diag.List. Problems in a template are placed at PATH:LINE,
// PATH relative to the stack root (or the name given to RenderString; for
// RenderAt, the position of the value in its file), and always at the
// template that failed, however deep the include or tpl calls that led
// there. Before a text runs it is checked whole, untaken branches
// included: syntax, defines, templates called by a constant name that nothing
// defines, and calls of the disabled functions. Templates run with
// missingkey=error: a missing map key (.Vars.nope) or struct field is an
// error, not "<no value>"; use index (index .Vars "my-key") for keys that may
// be missing or hold dashes. A field of .Service outside a node's manifests
// is an error that says so.
//
// # Functions
//
// Templates get text/template's built-ins, sprig's functions
// (github.com/Masterminds/sprig/v3, as in Helm: default, quote, nindent,
// indent, trim, upper, list, dict, merge, semver, b64enc, sha256sum, ...),
// and Helm's own:
//
//   - include NAME DATA: runs the named template and returns its output as a
//     string, so it can be piped: {{ include "app.labels" . | nindent 4 }}.
//   - tpl TEXT DATA: renders TEXT as a template with DATA, with the partials
//     and the caller's defines in scope.
//   - required MSG VALUE: VALUE, or an error saying MSG when VALUE is nil or
//     an empty string.
//   - fail MSG: an error saying MSG.
//   - toYaml, toYamlPretty (lists indented under their key), fromYaml,
//     fromYamlArray, toJson, fromJson, fromJsonArray. Unlike Helm's, they fail
//     on bad input instead of returning an empty string or an "Error" key.
//
// include and tpl may nest 1000 deep, then fail naming the template. The
// sprig functions that would read the process environment (env, expandenv)
// or reach the network (getHostByName) are not available: a template that
// calls one fails when it is checked. Templates read configuration from
// .Config and .Vars instead. Helm's lookup (cluster access) is not provided.
// Functions whose result differs from run to run (now, date, the rand*
// functions, uuidv4, shuffle, the gen* key and certificate functions,
// htpasswd, bcrypt, encryptAES, toDate with the host's time zone) are refused
// the same way: a plan is the same on every run, and generated values belong
// in spec.secrets[].generate. keys and values return their results in key
// order.
//
// # Limits
//
// Every render has a budget (Limits, DefaultLimits, WithLimits): steps
// (loop iterations, template runs and function calls, weighted), bytes of
// output, the size of any one value a function returns and of all of them,
// and the length of an error message; the renders whose context carries one
// WithRun share a budget of steps and output too. A template that exceeds one
// fails at its position, and one that loops over a constant integer too large
// fails when it is checked. A render checks its context at its first step
// and then every 4,096 steps: a render whose context is done stops within
// them and returns an error wrapping ctx.Err(). The run's shared budget is
// charged at the same checkpoints and when a render ends.
package render
