package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRun(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	tests := []struct {
		name string
		cmd  string
		args []string
		out  string
		code int // exitError code; -1: any other error
	}{
		{"echo", "echo", []string{"a", "b"}, "a b\n", 0},
		{"exit with log lines and message", "exit", []string{"-log", "step 1", "-log", "step 2", "3", "it", "failed"}, "step 1\nstep 2\nit failed\n", 3},
		{"exit zero", "exit", []string{"0"}, "", 0},
		{"exit code not a number", "exit", []string{"x"}, "", -1},
		{"write", "write", []string{file, "hello"}, "wrote " + file + "\n", 0},
		{"cat", "cat", []string{file}, "hello\n", 0},
		{"unknown", "nope", nil, "", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(tt.cmd, tt.args, &out)
			var ex exitError
			switch {
			case tt.code == -1:
				if err == nil || errors.As(err, &ex) {
					t.Fatalf("err = %v, want a usage error", err)
				}
			case tt.code == 0 && err != nil && !(errors.As(err, &ex) && ex == 0):
				t.Fatalf("err = %v", err)
			case tt.code > 0 && (!errors.As(err, &ex) || int(ex) != tt.code):
				t.Fatalf("err = %v, want exit %d", err, tt.code)
			}
			if out.String() != tt.out {
				t.Errorf("output %q, want %q", out.String(), tt.out)
			}
		})
	}
	var out bytes.Buffer
	if err := run("stat", []string{file}, &out); err != nil || !strings.Contains(out.String(), "mode=-rw-") {
		t.Errorf("stat: %q, %v", out.String(), err)
	}
	if _, err := os.Stat(file); err != nil {
		t.Fatal(err)
	}
}
