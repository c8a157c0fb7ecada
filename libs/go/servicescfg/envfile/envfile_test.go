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
		{"no equals", "A=1\nJUSTTEXT\n", "config.env:2:1: line is not KEY=VALUE (write KEY=VALUE; " + multiLineHint + ")"},
		{"bad name", "1A=x\n", "config.env:1:1: the text before = is not a variable name (letters, digits and _, not starting with a digit) (write KEY=VALUE; " + multiLineHint + ")"},
		{"unterminated", "A=\"x\n", "config.env:1:3: value of A: unterminated double quote (" + multiLineHint + ")"},
		{"unterminated single", "AB='x\n", "config.env:1:4: value of AB: unterminated single quote (" + multiLineHint + ")"},
		{"long line", "A=1\nB=" + strings.Repeat("x", maxLine) + "\n", "config.env:2:1: line is longer than 1 MiB"},
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

// TestParseErrorsNeverQuoteTheLine: a secret pasted over several lines or
// written as KEY: value (issue 9, #4) is reported by position and problem;
// no part of its text reaches the error.
func TestParseErrorsNeverQuoteTheLine(t *testing.T) {
	const secret = "ghp_Z9xQ7secretPART"
	tests := []struct {
		name, in, want string
	}{
		{"token over two lines", "TOKEN=\"" + secret + "\n" + secret + "2\"\n",
			"config.env:1:7: value of TOKEN: unterminated double quote (" + multiLineHint + ")\n" +
				"config.env:2:1: line is not KEY=VALUE (write KEY=VALUE; " + multiLineHint + ")"},
		{"token with = over two lines", "TOKEN=" + secret + "\n9" + secret + "==\n",
			"config.env:2:1: the text before = is not a variable name (letters, digits and _, not starting with a digit) (write KEY=VALUE; " + multiLineHint + ")"},
		{"KEY: value", "GITHUB_PAT: " + secret + "\n", "config.env:1:1: line is not KEY=VALUE (write KEY=VALUE, with = instead of :)"},
		{"KEY: value with =", "GITHUB_PAT: " + secret + "=x\n", "config.env:1:1: the text before = is not a variable name (letters, digits and _, not starting with a digit) (write KEY=VALUE, with = instead of :)"},
		{"quoted KEY: value", "GITHUB_PAT: '" + secret + "'\n", "config.env:1:1: line is not KEY=VALUE (write KEY=VALUE, with = instead of :)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("config.env", strings.NewReader(tt.in))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error =\n%v\nwant\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "secretPART") || strings.Contains(err.Error(), "Z9xQ7") {
				t.Errorf("the error quotes the secret: %v", err)
			}
		})
	}
}

// TestParseByteOrderMark: a config file saved with a UTF-8 byte order mark
// reads as without it, positions included.
func TestParseByteOrderMark(t *testing.T) {
	f, err := Parse("config.env", strings.NewReader("\uFEFFDOMAIN=example.test\nUSER=root\n"))
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := f.Get("DOMAIN"); !ok || v != "example.test" {
		t.Errorf("DOMAIN = %q, %v", v, ok)
	}
	if line, col := f.Position("DOMAIN"); line != 1 || col != 8 {
		t.Errorf("DOMAIN at %d:%d; want 1:8", line, col)
	}
	if _, err := Parse("config.env", strings.NewReader("\uFEFF1A=x\n")); err == nil || strings.Contains(err.Error(), "\uFEFF") {
		t.Errorf("error for a bad line after the mark: %v", err)
	}
}
