package envfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := `# operator config
CODEXK8S_DOMAIN=example.org
export CODEXK8S_SSH_USER = root
QUOTED="a b\n\"c\""
SINGLE='keep \n $HOME'
EMPTY=
BARE=value # trailing comment
DUP=1
DUP=2
`
	f, err := Parse("config.env", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"CODEXK8S_DOMAIN":   "example.org",
		"CODEXK8S_SSH_USER": "root",
		"QUOTED":            "a b\n\"c\"",
		"SINGLE":            `keep \n $HOME`,
		"EMPTY":             "",
		"BARE":              "value",
		"DUP":               "2",
	}
	for k, v := range want {
		got, ok := f.Get(k)
		if !ok || got != v {
			t.Errorf("Get(%s) = %q, %v; want %q", k, got, ok, v)
		}
	}
	if got := strings.Join(f.Keys(), ","); got != "CODEXK8S_DOMAIN,CODEXK8S_SSH_USER,QUOTED,SINGLE,EMPTY,BARE,DUP" {
		t.Errorf("Keys() = %s", got)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no equals", "A=1\nJUSTTEXT\n", "config.env:2:1: line is not KEY=VALUE (write KEY=VALUE)"},
		{"bad name", "1A=x\n", `config.env:1:1: invalid variable name "1A"`},
		{"unterminated", "A=\"x\n", "config.env:1:3: value of A: unterminated double quote"},
		{"unterminated single", "AB='x\n", "config.env:1:4: value of AB: unterminated single quote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.env", strings.NewReader(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error = %v; want %s", err, tt.want)
			}
		})
	}
}

func TestRoundTripPreservesCommentsAndOrder(t *testing.T) {
	in := "# keep me\nB=2\n\nA=1\n"
	f, err := Parse("c", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"A": "one two", "C": "x\"y$z\\", "D": "multi\nline"} {
		if err := f.Set(k, v); err != nil {
			t.Fatal(err)
		}
	}
	out := string(f.Bytes())
	if !strings.HasPrefix(out, "# keep me\nB=2\n\nA=\"one two\"\n") {
		t.Errorf("comments/order lost:\n%s", out)
	}
	g, err := Parse("c", strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"A", "B", "C", "D"} {
		a, _ := f.Get(k)
		b, _ := g.Get(k)
		if a != b {
			t.Errorf("%s: %q after round trip, want %q", k, b, a)
		}
	}
	if err := f.Set("bad-name", "x"); err == nil {
		t.Error("Set accepted an invalid name")
	}
}

func TestWriteFileAtomicAndPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "host", "config.env")
	f, err := Read(path)
	if err != nil {
		t.Fatalf("missing file must read as empty: %v", err)
	}
	if err := f.Set("TOKEN", "s3cret"); err != nil {
		t.Fatal(err)
	}
	if err := f.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", st.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("temporary files left behind: %v", entries)
	}
	g, err := Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := g.Get("TOKEN"); v != "s3cret" {
		t.Errorf("TOKEN = %q", v)
	}
}

func FuzzParse(f *testing.F) {
	f.Add("A=1\n# c\nB=\"x\\ny\"\n")
	f.Add("export X='y'\n")
	f.Add("=\n")
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Parse("f", strings.NewReader(in))
		if err != nil {
			return
		}
		// Whatever parses must survive a write and re-read unchanged.
		for _, k := range file.Keys() {
			v, _ := file.Get(k)
			if err := file.Set(k, v); err != nil {
				t.Fatal(err)
			}
		}
		again, err := Parse("f", strings.NewReader(string(file.Bytes())))
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, file.Bytes())
		}
		for _, k := range file.Keys() {
			a, _ := file.Get(k)
			b, _ := again.Get(k)
			if a != b {
				t.Fatalf("%s: %q != %q", k, a, b)
			}
		}
	})
}

// TestPosition: where the value in force was read, for a key assigned
// twice, after an export and with indentation.
func TestPosition(t *testing.T) {
	f, err := Parse("config.env", strings.NewReader("A=1\nA=2\nB=x\n  export C = y\n# D=no\nE=  spaced\n"))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string][2]int{"A": {2, 3}, "B": {3, 3}, "C": {4, 14}, "D": {0, 0}, "E": {6, 5}} {
		line, col := f.Position(key)
		if line != want[0] || col != want[1] {
			t.Errorf("%s at %d:%d, want %d:%d", key, line, col, want[0], want[1])
		}
	}
	if err := f.Set("B", "new"); err != nil {
		t.Fatal(err)
	}
	if line, col := f.Position("B"); line != 0 || col != 0 {
		t.Errorf("B after Set at %d:%d, want 0:0: the file no longer says it", line, col)
	}
}
