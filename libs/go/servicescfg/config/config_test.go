package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/envfile"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/stack"
)

func testStack() *stack.Stack {
	return &stack.Stack{Spec: stack.Spec{Bootstrap: &stack.Bootstrap{
		ConfigFile: "bootstrap/host/config.env",
		Variables: []*stack.Variable{
			{Name: "DOMAIN", Required: true, Pattern: `[a-z.]+`},
			{Name: "TOKEN", Required: true, Secret: true},
			{Name: "USER", Default: "root"},
			{Name: "EMAIL"},
		},
	}}}
}

func TestResolvePrecedence(t *testing.T) {
	f, err := envfile.Parse("config.env", strings.NewReader("DOMAIN=file.example\nTOKEN=from-file\nUNDECLARED=x\n"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"CODEX_VAR_DOMAIN": "env.example", "TOKEN": "read-without-prefix"}
	v := Resolve(testStack(), f, func(k string) (string, bool) { s, ok := env[k]; return s, ok })

	for _, tt := range []struct {
		name, want string
		src        Source
	}{
		{"DOMAIN", "env.example", SourceEnv},
		{"TOKEN", "from-file", SourceFile},
		{"USER", "root", SourceDefault},
	} {
		if got, _ := v.Get(tt.name); got != tt.want || v.Source(tt.name) != tt.src {
			t.Errorf("%s = %q from %s; want %q from %s", tt.name, got, v.Source(tt.name), tt.want, tt.src)
		}
	}
	if _, ok := v.Get("UNDECLARED"); ok {
		t.Error("undeclared variables must not be resolved")
	}
	ns := v.NonSecret()
	if _, ok := ns["TOKEN"]; ok {
		t.Error("a secret value reached the template config")
	}
	if ns["DOMAIN"] != "env.example" || ns["USER"] != "root" || len(ns) != 2 {
		t.Errorf("NonSecret() = %v", ns)
	}
}

func TestMissingAndCheck(t *testing.T) {
	v := Resolve(testStack(), nil, nil)
	var names []string
	for _, m := range v.Missing() {
		names = append(names, m.Name)
	}
	if strings.Join(names, ",") != "DOMAIN,TOKEN" {
		t.Errorf("Missing() = %v", names)
	}
	v.Set("DOMAIN", "NOT VALID")
	v.Set("TOKEN", "hunter2")
	if len(v.Missing()) != 0 {
		t.Errorf("Missing() after Set = %v", v.Missing())
	}
	err := v.Check()
	var errs diag.List
	if !errors.As(err, &errs) || len(errs) != 1 || !strings.Contains(errs[0].Error(), "DOMAIN") || strings.Contains(errs[0].Error(), "NOT VALID") {
		t.Errorf("Check() = %v; want one error naming DOMAIN without its value", err)
	}
}

// TestHostEnvironmentNeedsThePrefix: a stack that declares a variable named
// after a host variable (issue 9, #1) does not read it; only the operator's
// CODEX_VAR_ name sets it.
func TestHostEnvironmentNeedsThePrefix(t *testing.T) {
	s := &stack.Stack{Spec: stack.Spec{Bootstrap: &stack.Bootstrap{Variables: []*stack.Variable{
		{Name: "AWS_SECRET_ACCESS_KEY"}, {Name: "HOME"}, {Name: "CODEXK8S_DOMAIN"},
	}}}}
	env := map[string]string{
		"AWS_SECRET_ACCESS_KEY":     "host-secret",
		"HOME":                      "/root",
		"CODEX_VAR_CODEXK8S_DOMAIN": "codex.example",
	}
	var asked []string
	v := Resolve(s, nil, func(k string) (string, bool) { asked = append(asked, k); s, ok := env[k]; return s, ok })
	if got := v.NonSecret(); len(got) != 1 || got["CODEXK8S_DOMAIN"] != "codex.example" {
		t.Errorf("NonSecret() = %v; want only CODEXK8S_DOMAIN", got)
	}
	for _, k := range asked {
		if !strings.HasPrefix(k, EnvPrefix) {
			t.Errorf("looked up %s, outside %s", k, EnvPrefix)
		}
	}
}
