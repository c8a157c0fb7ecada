// Package envfile reads and writes the operator's config file
// (bootstrap/host/config.env): KEY=VALUE lines, comments and blank lines.
//
// Values may be written bare, in double quotes (with \n, \t, \\ and \" escapes)
// or in single quotes (taken literally). Writing preserves comments, the order
// of existing keys and unknown keys, and replaces the file atomically, so an
// interrupted write never leaves a half-written file.
package envfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// line is one line of the file: a key/value pair or anything else kept verbatim.
type line struct {
	key   string // empty for comments and blank lines
	value string
	raw   string
	// at is where the value in force was read: 1-based line and the column
	// where the value starts; zero for lines written since.
	at, col int
}

// File is a parsed env file. The zero value is an empty file.
type File struct {
	lines []line
	index map[string]int
}

// maxLine is the longest line Parse reads.
const maxLine = 1 << 20

// Parse reads an env file. name is used in error positions. A UTF-8 byte
// order mark at the start is skipped, as YAML readers do.
//
// An error about a line names its position and the problem, never the
// line's text: a token pasted over several lines or written as KEY: value
// must not reach a terminal or a CI log through the error that reports it.
func Parse(name string, r io.Reader) (*File, error) {
	f := &File{index: map[string]int{}}
	var errs diag.List
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), maxLine)
	n := 0
	for sc.Scan() {
		n++
		raw := sc.Text()
		if n == 1 {
			raw = strings.TrimPrefix(raw, "\uFEFF")
		}
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			f.lines = append(f.lines, line{raw: raw})
			continue
		}
		trimmed = strings.TrimPrefix(trimmed, "export ")
		key, rest, ok := strings.Cut(trimmed, "=")
		key = strings.TrimSpace(key)
		if !ok {
			errs.AddHint(diag.Pos{File: name, Line: n, Col: 1}, lineHint(trimmed), "line is not KEY=VALUE")
			continue
		}
		if !keyRE.MatchString(key) {
			errs.AddHint(diag.Pos{File: name, Line: n, Col: 1}, lineHint(trimmed),
				"the text before = is not a variable name (letters, digits and _, not starting with a digit)")
			continue
		}
		value, err := unquote(strings.TrimSpace(rest))
		if err != nil {
			errs.AddHint(diag.Pos{File: name, Line: n, Col: len(key) + 2}, multiLineHint, "value of %s: %v", key, err)
			continue
		}
		// The value starts after the first = and the spaces after it.
		eq := strings.Index(raw, "=")
		col := eq + 2 + len(raw[eq+1:]) - len(strings.TrimLeft(raw[eq+1:], " \t"))
		if i, dup := f.index[key]; dup {
			// The last assignment wins, as in a shell; keep one line.
			f.lines[i].value = value
			f.lines[i].raw = raw
			f.lines[i].at, f.lines[i].col = n, col
			continue
		}
		f.index[key] = len(f.lines)
		f.lines = append(f.lines, line{key: key, value: value, raw: raw, at: n, col: col})
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		errs.Add(diag.Pos{File: name, Line: n + 1, Col: 1}, "line is longer than %d MiB", maxLine>>20)
	} else if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return f, nil
}

// Read parses the file at path. A missing file is an empty File, not an error.
func Read(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &File{index: map[string]int{}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, bytes.NewReader(data))
}

// multiLineHint is the advice for a value that does not end where it
// should: most often a value pasted over several lines.
const multiLineHint = `a value pasted over several lines goes on one line: in double quotes, \n stands for a line break`

// keyColonRE is a line written as YAML, KEY: value.
var keyColonRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*\s*:`)

// lineHint is the advice for a line that is not KEY=VALUE; it looks at the
// line but never repeats it.
func lineHint(line string) string {
	if keyColonRE.MatchString(line) {
		return "write KEY=VALUE, with = instead of :"
	}
	return "write KEY=VALUE; " + multiLineHint
}

func unquote(v string) (string, error) {
	if v == "" {
		return "", nil
	}
	switch v[0] {
	case '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' {
			return "", errors.New("unterminated single quote")
		}
		return v[1 : len(v)-1], nil
	case '"':
		if len(v) < 2 || v[len(v)-1] != '"' {
			return "", errors.New("unterminated double quote")
		}
		var b strings.Builder
		body := v[1 : len(v)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			if c != '\\' || i == len(body)-1 {
				b.WriteByte(c)
				continue
			}
			i++
			switch body[i] {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				b.WriteByte(body[i])
			}
		}
		return b.String(), nil
	}
	// A bare value ends at an unquoted " #" comment.
	if i := strings.Index(v, " #"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	return v, nil
}

// quote renders a value so that Parse reads it back unchanged.
func quote(v string) string {
	// Bare only when nothing in it could be read differently: no space of
	// any kind (reading trims them), no control character, no quote,
	// escape, comment or expansion.
	if v != "" && !strings.ContainsAny(v, "\"'\\#$`") && strings.IndexFunc(v, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }) < 0 {
		return v
	}
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "$", `\$`, "`", "\\`")
	return `"` + r.Replace(v) + `"`
}

// Position returns where the value of key in force was read: the 1-based
// line (the last assignment, when the key is assigned twice) and the column
// where its value starts; zeros when the key was not read from the file.
func (f *File) Position(key string) (line, col int) {
	if f == nil || f.index == nil {
		return 0, 0
	}
	if i, ok := f.index[key]; ok {
		return f.lines[i].at, f.lines[i].col
	}
	return 0, 0
}

// Get returns the value of key and whether it is set.
func (f *File) Get(key string) (string, bool) {
	if f == nil || f.index == nil {
		return "", false
	}
	i, ok := f.index[key]
	if !ok {
		return "", false
	}
	return f.lines[i].value, true
}

// Set assigns key, keeping its line in place or appending a new one.
func (f *File) Set(key, value string) error {
	if !keyRE.MatchString(key) {
		return fmt.Errorf("invalid variable name %q", key)
	}
	if f.index == nil {
		f.index = map[string]int{}
	}
	raw := key + "=" + quote(value)
	if i, ok := f.index[key]; ok {
		f.lines[i].value, f.lines[i].raw = value, raw
		f.lines[i].at, f.lines[i].col = 0, 0 // no longer what the file said
		return nil
	}
	f.index[key] = len(f.lines)
	f.lines = append(f.lines, line{key: key, value: value, raw: raw})
	return nil
}

// Keys returns the keys in file order.
func (f *File) Keys() []string {
	var keys []string
	for _, l := range f.lines {
		if l.key != "" {
			keys = append(keys, l.key)
		}
	}
	return keys
}

// Bytes renders the file.
func (f *File) Bytes() []byte {
	var b bytes.Buffer
	for _, l := range f.lines {
		b.WriteString(l.raw)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// WriteFile replaces path atomically (temporary file, fsync, rename) with mode
// 0600: the file holds secrets.
func (f *File) WriteFile(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if _, err := tmp.Write(f.Bytes()); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}
