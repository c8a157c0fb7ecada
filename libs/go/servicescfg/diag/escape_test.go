package diag

import (
	"strings"
	"testing"
	"unicode"
)

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain text, tabs\tand é ü 日本", "plain text, tabs\tand é ü 日本"},
		{"title \x1b]0;pwned\x07", `title \x1b]0;pwned\a`},
		{"clear \x1b[2J\x1b[H", `clear \x1b[2J\x1b[H`},
		{"line\nforged: error", `line\nforged: error`},
		{"cr\rover", `cr\rover`},
		{"del\x7f c1 \u009b", `del\x7f c1 \u009b`},
		{"bidi \u202eevil\u202c \u2066x\u2069 sep\u2028", `bidi \u202eevil\u202c \u2066x\u2069 sep\u2028`},
		{"bad utf8 \xff\xfe", `bad utf8 \xff\xfe`},
		{`already \x1b escaped`, `already \x1b escaped`},
	}
	for _, tt := range tests {
		got := Escape(tt.in)
		if got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if Escape(got) != got {
			t.Errorf("Escape is not idempotent on %q", got)
		}
	}
	if got := EscapeLines("a\x1b\nb"); got != "a\\x1b\nb" {
		t.Errorf("EscapeLines = %q", got)
	}
	d := &Diagnostic{Pos: Pos{File: "m/\x1b[31m.yaml", Line: 2}, Msg: "bad \x1b[2J", Hint: "\x07", Via: []string{"x\ny"}}
	if got := d.Error(); got != `m/\x1b[31m.yaml:2: bad \x1b[2J, rendering x\ny (\a)` {
		t.Errorf("Error() = %q", got)
	}
}

func FuzzEscape(f *testing.F) {
	f.Add("\x1b]0;x\x07\u202e\xff")
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if Escape(got) != got {
			t.Fatalf("not idempotent: %q", got)
		}
		for _, r := range got {
			if r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)) {
				t.Fatalf("%q keeps %U", got, r)
			}
		}
		if !strings.ContainsAny(s, "\\\x00\x1b\n\r\x7f") && len(got) < len(s) {
			t.Fatalf("shortened %q to %q", s, got)
		}
	})
}
