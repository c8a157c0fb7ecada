package render

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// execRE splits text/template's execution error, the only place it gives the
// position: "template: FILE:LINE:COL: executing "NAME" at <NODE>: MESSAGE".
// FILE is the name the text was parsed under: the path relative to the stack
// root, since every text is parsed under its own name.
var execRE = regexp.MustCompile(`(?s)^template: (.*?):(\d+):\d+: executing ".*?" at <(.*?)>: (.*)$`)

var notDefinedRE = regexp.MustCompile(`^template (".*") not defined$`)

// nilService starts Go's message for a field of a nil .Service.
var nilService = "nil pointer evaluating " + reflect.TypeFor[*Service]().String() + "."

// tplError is a failure inside the text given to tpl; the caller's level
// places it at the tpl call.
type tplError struct {
	line int
	d    *diag.Diagnostic
}

func (e *tplError) Error() string {
	if strings.HasPrefix(e.d.Msg, "tpl text line ") {
		return e.d.Msg // nested tpl calls: the innermost line says where
	}
	return fmt.Sprintf("tpl text line %d: %s", e.line, e.d.Msg)
}

// fromTpl turns a diagnostic placed in tpl text into a tplError.
func fromTpl(d *diag.Diagnostic) error {
	if d.Pos.File == tplFile {
		return &tplError{line: d.Pos.Line, d: d}
	}
	return d
}

// execError turns an execution error into a diagnostic at the file and line
// of the template that failed: the innermost one, when include or tpl nest.
func (e *Engine) execError(err error) *diag.Diagnostic {
	var d *diag.Diagnostic
	if errors.As(err, &d) && d.Pos.File != "" {
		return d // already placed by a nested include
	}
	m := execRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &diag.Diagnostic{Msg: strings.TrimPrefix(err.Error(), "template: ")}
	}
	line, _ := strconv.Atoi(m[2])
	pos := diag.Pos{File: m[1], Line: line}
	node, msg := m[3], contextTypes(m[4])
	var te *tplError
	var ue userError
	switch {
	case errors.As(err, &te):
		return &diag.Diagnostic{Pos: pos, Msg: te.Error(), Hint: te.d.Hint}
	case errors.As(err, &ue):
		return &diag.Diagnostic{Pos: pos, Msg: string(ue)}
	}
	if n := notDefinedRE.FindStringSubmatch(msg); n != nil {
		return &diag.Diagnostic{Pos: pos, Msg: "no template " + n[1]}
	}
	if strings.HasPrefix(msg, nilService) {
		return &diag.Diagnostic{Pos: pos, Msg: fmt.Sprintf("at <%s>: .Service is not set", node),
			Hint: "only a node's manifests have a service"}
	}
	return &diag.Diagnostic{Pos: pos, Msg: fmt.Sprintf("at <%s>: %s", node, msg), Hint: missingKeyHint(node, msg)}
}

// missingKeyHint says where a missing key of the context's maps comes from.
func missingKeyHint(node, msg string) string {
	if !strings.HasPrefix(msg, "map has no entry for key") {
		return ""
	}
	switch {
	case strings.HasPrefix(node, ".Config."):
		return "a bootstrap variable without a value: declare it in spec.bootstrap.variables and set it in the config file or as CODEX_VAR_NAME in the environment, " +
			"or read it with index .Config \"NAME\" | default ...; secret variables never reach .Config"
	case strings.HasPrefix(node, ".Vars."):
		return "declare it under spec.vars or the environment's vars"
	case strings.HasPrefix(node, ".Versions."):
		return "declare it under spec.versions or the environment's versions"
	}
	return ""
}

// isDiag reports whether err carries diagnostics of its own.
func isDiag(err error) bool {
	var l diag.List
	var d *diag.Diagnostic
	return errors.As(err, &l) || errors.As(err, &d)
}

// contextFields names each part of the template context as templates reach
// it, with its fields, for "can't evaluate field" errors: users know
// .Service, not the Go type behind it.
var contextFields = map[string]struct{ name, fields string }{
	"render.Context":         {"the template context", ".Project .Env .Namespace .Slot .Versions .Vars .Config .Runtime .Service"},
	"render.Service":         {".Service", ".Name .Group .Image .Kind .DependsOn .Vars .HotReload"},
	"render.Runtime":         {".Runtime", ".Profile .HotReload .Workspace"},
	"render.Workspace":       {".Runtime.Workspace", ".Enabled .MountPath .Size .StorageClass .AccessMode .ClaimName .UID .GID .FSGroup .Source"},
	"render.WorkspaceSource": {".Runtime.Workspace.Source", ".Git .Ref .CredentialsSecret .Image"},
}

var fieldRE = regexp.MustCompile(`^can't evaluate field (\w+) in type \*?(render\.\w+)$`)

func contextTypes(msg string) string {
	m := fieldRE.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	c, ok := contextFields[m[2]]
	if !ok {
		return msg
	}
	return fmt.Sprintf("%s has no field %s (it has %s)", c.name, m[1], c.fields)
}
