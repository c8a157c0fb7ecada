package stack

import (
	"encoding/json"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

func TestDurationEncoding(t *testing.T) {
	var r Readiness
	if err := yaml.Unmarshal([]byte("timeout: 1m30s\n"), &r); err != nil || r.Timeout.Duration != 90*time.Second {
		t.Fatalf("yaml: %v, %v", r.Timeout, err)
	}
	out, err := yaml.Marshal(r)
	if err != nil || string(out) != "timeout: 1m30s\n" {
		t.Errorf("yaml marshal: %q, %v", out, err)
	}
	if err := yaml.Unmarshal([]byte("timeout: 90\n"), &r); err == nil {
		t.Error("yaml: a number without unit decoded")
	}
	var j Readiness
	if err := json.Unmarshal([]byte(`{"timeout":"5m"}`), &j); err != nil || j.Timeout.Duration != 5*time.Minute {
		t.Fatalf("json: %v, %v", j.Timeout, err)
	}
	b, err := json.Marshal(j)
	if err != nil || string(b) != `{"timeout":"5m0s"}` {
		t.Errorf("json marshal: %s, %v", b, err)
	}
	for _, in := range []string{`"5 minutes"`, `300`} {
		if err := json.Unmarshal([]byte(`{"timeout":`+in+`}`), &j); err == nil {
			t.Errorf("json: %s decoded", in)
		}
	}
}

func TestDurationOmitEmpty(t *testing.T) {
	out, err := yaml.Marshal(Step{Name: "s", Script: "x.sh"})
	if err != nil || string(out) != "name: s\nscript: x.sh\n" {
		t.Errorf("yaml marshal: %q, %v", out, err)
	}
}
