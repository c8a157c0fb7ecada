package stack

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

const inheritance = `apiVersion: codex-k8s.dev/v1alpha1
kind: ServiceStack
metadata: {name: demo}
spec:
  project: demo
  versions: {postgres: "16", api: "1.0"}
  vars: {registry: registry.local, log: info}
  environments:
    dev:
      runtime: non-prod
      namespaceTemplate: "{{ .Project }}-dev"
      vars: {log: debug}
      labels: {tier: dev, team: a}
      overlays:
        api: {image: api:dev, vars: {A: "1", B: "1"}, manifests: [deploy/overlays/debug.yaml.tpl]}
        web: {enabled: false}
    ai-slot:
      from: dev
      slots: true
      namespaceTemplate: "{{ .Project }}-dev-{{ .Slot }}"
      versions: {api: "2.0"}
      labels: {tier: slot}
      annotations: {owner: bot}
      overlays:
        api: {vars: {B: "2"}, manifests: []}
        web: {enabled: true}
    prod: {runtime: prod, namespaceTemplate: "{{ .Project }}", slots: false}
  runtime:
    non-prod: {workspace: {mountPath: /workspace, uid: 1000}}
  services:
    - {name: api, manifests: [deploy/base/api/deployment.yaml.tpl]}
    - {name: web, manifests: [deploy/base/web/deployment.yaml.tpl]}
`

func TestResolveEnvironment(t *testing.T) {
	s, errs := loadString(t, inheritance)
	if len(errs) > 0 {
		t.Fatalf("want no problems, got:\n%s", errs.Error())
	}
	r, err := s.ResolveEnvironment("ai-slot")
	if err != nil {
		t.Fatal(err)
	}
	yes, no := true, false
	want := &ResolvedEnvironment{
		Name:              "ai-slot",
		Chain:             []string{"ai-slot", "dev"},
		RuntimeName:       RuntimeNonProd,
		Runtime:           &Runtime{HotReload: true, Workspace: &Workspace{MountPath: "/workspace", UID: r.Runtime.Workspace.UID}},
		NamespaceTemplate: "{{ .Project }}-dev-{{ .Slot }}",
		Slots:             true,
		Vars:              map[string]string{"registry": "registry.local", "log": "debug"},
		Versions:          map[string]string{"postgres": "16", "api": "2.0"},
		Labels:            map[string]string{"tier": "slot", "team": "a"},
		Annotations:       map[string]string{"owner": "bot"},
		Overlays: map[string]*Overlay{
			"api": {Image: "api:dev", Vars: map[string]string{"A": "1", "B": "2"}, Manifests: []string{}},
			"web": {Enabled: &yes},
		},
	}
	if !reflect.DeepEqual(r, want) {
		t.Errorf("got  %+v\nwant %+v", r, want)
		for k, ov := range r.Overlays {
			t.Logf("overlay %s: %+v", k, ov)
		}
	}
	if *r.Runtime.Workspace.UID != 1000 {
		t.Errorf("uid = %d", *r.Runtime.Workspace.UID)
	}

	// The result shares nothing with the stack.
	r.Vars["log"] = "changed"
	r.Overlays["api"].Vars["A"] = "changed"
	*r.Runtime.Workspace.UID = 0
	r.Runtime.HotReload = false
	again, _ := s.ResolveEnvironment("ai-slot")
	if again.Vars["log"] != "debug" || again.Overlays["api"].Vars["A"] != "1" || *again.Runtime.Workspace.UID != 1000 || !again.Runtime.HotReload {
		t.Errorf("ResolveEnvironment returned maps shared with the stack")
	}

	dev, err := s.ResolveEnvironment("dev")
	if err != nil {
		t.Fatal(err)
	}
	if dev.Slots || !reflect.DeepEqual(dev.Overlays["api"].Manifests, []string{"deploy/overlays/debug.yaml.tpl"}) || *dev.Overlays["web"].Enabled != no {
		t.Errorf("dev = %+v", dev)
	}
	prod, err := s.ResolveEnvironment("prod")
	if err != nil {
		t.Fatal(err)
	}
	if prod.Runtime.HotReload || prod.RuntimeName != RuntimeProd || prod.Slots || !prod.Production || len(prod.Overlays) != 0 {
		t.Errorf("prod = %+v", prod)
	}
}

func TestResolveTTLAndProduction(t *testing.T) {
	s, errs := loadString(t, header+`    ai-slot: {from: dev, slots: true, ttl: 48h, namespaceTemplate: "{{ .Project }}-{{ .Slot }}"}
    eu: {from: live}
    live: {runtime: batch, production: true, namespaceTemplate: "{{ .Project }}-{{ .Env }}"}
  runtime: {batch: {hotReload: false}}
`+services)
	if len(errs) > 0 {
		t.Fatalf("want no problems, got:\n%s", errs.Error())
	}
	for _, tt := range []struct {
		env        string
		ttl        time.Duration
		production bool
	}{{"ai-slot", 48 * time.Hour, false}, {"dev", 0, false}, {"live", 0, true}, {"eu", 0, true}} {
		r, err := s.ResolveEnvironment(tt.env)
		if err != nil {
			t.Fatal(err)
		}
		if r.TTL != tt.ttl || r.Production != tt.production {
			t.Errorf("%s: ttl %v, production %v; want %v, %v", tt.env, r.TTL, r.Production, tt.ttl, tt.production)
		}
	}
}

func TestIsProduction(t *testing.T) {
	yes, no := true, false
	for _, tt := range []struct {
		env, runtime string
		flag         *bool
		want         bool
	}{
		{"prod", RuntimeNonProd, nil, true},
		{"prod", RuntimeNonProd, &no, true},
		{"live", RuntimeProd, nil, true},
		{"live", "batch", &yes, true},
		{"live", "batch", &no, false},
		{"dev", RuntimeNonProd, nil, false},
		{"production", RuntimeNonProd, nil, false},
	} {
		if got := IsProduction(tt.env, tt.runtime, tt.flag); got != tt.want {
			t.Errorf("IsProduction(%q, %q, %v) = %v, want %v", tt.env, tt.runtime, tt.flag, got, tt.want)
		}
	}
}

func TestResolveEnvironmentErrors(t *testing.T) {
	s, _ := loadString(t, header+`    loop-a: {from: loop-b}
    loop-b: {from: loop-a}
    orphan: {from: nowhere}
    bare: {}
    odd: {runtime: odd, namespaceTemplate: x}
`+services)
	tests := []struct {
		env string
		is  error
		msg string
	}{
		{"staging", ErrUnknownEnvironment, `unknown environment "staging" (declared: bare, dev, loop-a, loop-b, odd, orphan)`},
		{"loop-b", ErrInvalidEnvironment, `environment "loop-b": invalid environment: environment cycle: loop-a -> loop-b -> loop-a`},
		{"orphan", ErrInvalidEnvironment, `environment "orphan": invalid environment: "orphan" inherits from unknown environment "nowhere"`},
		{"bare", ErrInvalidEnvironment, `environment "bare" has no runtime: invalid environment`},
		{"odd", ErrInvalidEnvironment, `environment "odd" uses unknown runtime profile "odd": invalid environment`},
	}
	for _, tt := range tests {
		_, err := s.ResolveEnvironment(tt.env)
		if !errors.Is(err, tt.is) || err.Error() != tt.msg {
			t.Errorf("ResolveEnvironment(%q) = %v, want %q", tt.env, err, tt.msg)
		}
	}
}

func TestAccessorsAndPositions(t *testing.T) {
	s, errs := loadString(t, inheritance)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := s.EnvironmentNames(); !reflect.DeepEqual(got, []string{"ai-slot", "dev", "prod"}) {
		t.Errorf("EnvironmentNames = %v", got)
	}
	var names []string
	for _, n := range s.Nodes() {
		names = append(names, n.Name)
	}
	if !reflect.DeepEqual(names, []string{"api", "web"}) || s.Node("web") != s.Spec.Services[1] || s.Node("nope") != nil {
		t.Errorf("Nodes = %v", names)
	}
	if s.GroupIndex(GroupFrontend) != 4 || s.GroupIndex("nope") != -1 {
		t.Error("GroupIndex")
	}
	for _, tt := range []struct {
		got  string
		want string
	}{
		{s.PosOf("spec", "services", 1, "manifests", 0).String(), "services.yaml:32:31"},
		{s.NodePos(s.Node("web"), "manifests", 0).String(), "services.yaml:32:31"},
		{s.NodePos(s.Node("web")).String(), "services.yaml:32:7"},
		{s.PosOf("spec", "environments", "ai-slot", "namespaceTemplate").String(), "services.yaml:20:26"},
		{s.KeyPosOf("spec", "environments", "ai-slot").String(), "services.yaml:17:5"},
		// A missing field lands on its deepest existing parent.
		{s.PosOf("spec", "services", 1, "when").String(), "services.yaml:32:7"},
		{s.PosOf().String(), "services.yaml:1:1"},
		{(&Stack{File: "x.yaml"}).PosOf("spec").String(), "x.yaml"},
	} {
		if tt.got != tt.want {
			t.Errorf("position %s, want %s", tt.got, tt.want)
		}
	}
}
