// Package config resolves the operator-supplied values a stack declares in
// spec.bootstrap.variables: from the config file (bootstrap/host/config.env),
// overlaid by the process environment under the tool's own prefix
// (CODEX_VAR_NAME for a variable NAME), falling back to declared defaults.
//
// The prefix is the operator's, not the stack's: a stack written by someone
// else may declare a variable named after any host variable (AWS_SECRET_ACCESS_KEY,
// say), and without the prefix it would print that variable's value into a
// manifest. Only variables the operator exported as CODEX_VAR_* are read.
//
// Only non-secret values are ever handed to templates; secret values are used
// for Kubernetes Secrets (fromConfig) and bootstrap steps, and are never
// printed.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/envfile"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

// LookupFunc reads a process environment variable; os.LookupEnv in production.
// It is only ever asked for names that start with EnvPrefix.
type LookupFunc func(string) (string, bool)

// EnvPrefix starts the name of every process environment variable the tool
// reads a bootstrap variable from: CODEX_VAR_CODEXK8S_DOMAIN sets
// CODEXK8S_DOMAIN.
const EnvPrefix = "CODEX_VAR_"

// EnvName is the process environment variable that sets the bootstrap
// variable name.
func EnvName(name string) string { return EnvPrefix + name }

// Source says where a value came from.
type Source string

const (
	SourceFile    Source = "file"
	SourceEnv     Source = "env"
	SourceDefault Source = "default"
)

// Values are the resolved variables of one stack.
type Values struct {
	vars   []*stack.Variable
	values map[string]string
	source map[string]Source
	// file is the config file the values were read from, and name its path
	// relative to the stack root, for positions.
	file *envfile.File
	name string
}

// Path returns the absolute path of the stack's config file, or "" when the
// stack declares none.
func Path(s *stack.Stack) string {
	if s.Spec.Bootstrap == nil || s.Spec.Bootstrap.ConfigFile == "" {
		return ""
	}
	return filepath.Join(s.Root, filepath.FromSlash(s.Spec.Bootstrap.ConfigFile))
}

// Load reads the stack's config file (a missing file is empty) and resolves
// every declared variable. The file is read through the stack root like
// every file of the stack (stack.ReadFile): a link out of the root, a named
// pipe or a file over the size limit is an error naming it.
func Load(s *stack.Stack, lookup LookupFunc) (*Values, *envfile.File, error) {
	f := &envfile.File{}
	if Path(s) != "" {
		name := s.Spec.Bootstrap.ConfigFile
		data, err := s.ReadFile(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return nil, nil, fmt.Errorf("read config: %w", err)
		default:
			if f, err = envfile.Parse(name, bytes.NewReader(data)); err != nil {
				return nil, nil, err
			}
		}
	}
	return Resolve(s, f, lookup), f, nil
}

// Resolve computes the values of the declared variables: the process
// environment (EnvName of each variable, nothing else) wins over the file,
// the file over the declared default.
func Resolve(s *stack.Stack, f *envfile.File, lookup LookupFunc) *Values {
	v := &Values{values: map[string]string{}, source: map[string]Source{}, file: f}
	if s.Spec.Bootstrap != nil {
		v.vars = s.Spec.Bootstrap.Variables
		v.name = s.Spec.Bootstrap.ConfigFile
	}
	for _, d := range v.vars {
		if lookup != nil {
			if val, ok := lookup(EnvName(d.Name)); ok && val != "" {
				v.values[d.Name], v.source[d.Name] = val, SourceEnv
				continue
			}
		}
		if val, ok := f.Get(d.Name); ok && val != "" {
			v.values[d.Name], v.source[d.Name] = val, SourceFile
			continue
		}
		if d.Default != "" {
			v.values[d.Name], v.source[d.Name] = d.Default, SourceDefault
		}
	}
	return v
}

// Get returns a variable's value, secret or not.
func (v *Values) Get(name string) (string, bool) {
	val, ok := v.values[name]
	return val, ok
}

// Source tells where a set variable's value came from.
func (v *Values) Source(name string) Source { return v.source[name] }

// Set records a value supplied by the operator (e.g. typed at a prompt).
func (v *Values) Set(name, value string) {
	v.values[name], v.source[name] = value, SourceFile
}

// Variables returns the declared variables in declared order.
func (v *Values) Variables() []*stack.Variable { return v.vars }

// NonSecret returns the values templates may see (.Config).
func (v *Values) NonSecret() map[string]string {
	out := make(map[string]string, len(v.values))
	for _, d := range v.vars {
		if val, ok := v.values[d.Name]; ok && !d.Secret {
			out[d.Name] = val
		}
	}
	return out
}

// Missing returns the required variables that have no value, in declared order.
func (v *Values) Missing() []*stack.Variable {
	var out []*stack.Variable
	for _, d := range v.vars {
		if _, ok := v.values[d.Name]; d.Required && !ok {
			out = append(out, d)
		}
	}
	return out
}

// Check validates set values against their declared patterns, returning a
// diag.List (nil when all match): a value from the config file is placed at
// its line there. Messages name the variable, never the value.
func (v *Values) Check() error {
	var errs diag.List
	names := make([]string, 0, len(v.vars))
	byName := map[string]*stack.Variable{}
	for _, d := range v.vars {
		names = append(names, d.Name)
		byName[d.Name] = d
	}
	sort.Strings(names)
	for _, n := range names {
		d := byName[n]
		val, ok := v.values[n]
		if !ok || d.Pattern == "" || v.source[n] == SourceDefault {
			continue // a default that does not match: the loader says so, at its position
		}
		re, err := d.Matcher()
		if err != nil {
			continue // the loader reports the pattern at its position
		}
		if re.MatchString(val) {
			continue
		}
		switch v.source[n] {
		case SourceFile:
			pos := diag.Pos{File: v.name}
			pos.Line, pos.Col = v.file.Position(n)
			errs.AddHint(pos, "correct it in the config file", "the value of %s does not match its pattern %q", n, d.Pattern)
		case SourceEnv:
			errs.AddHint(diag.Pos{}, "correct or unset the environment variable "+EnvName(n), "the value of %s in the environment (%s) does not match its pattern %q", n, EnvName(n), d.Pattern)
		}
	}
	return errs.Err()
}
