package stack

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
)

// maxAliasDepth bounds alias chains (an alias to an alias to ...), so that a
// malformed document cannot recurse without end.
const maxAliasDepth = 64

// deref follows aliases to the node they name.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < maxAliasDepth; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// pair is one entry of a mapping node.
type pair struct {
	key, value *yaml.Node
	// merged is set for entries brought in by a "<<" merge key.
	merged bool
}

// pairs lists the entries of a mapping, expanding "<<" merge keys: explicit
// entries come first and win over merged ones, as YAML specifies.
func pairs(n *yaml.Node) []pair {
	return appendPairs(nil, n, false, 0)
}

func appendPairs(out []pair, n *yaml.Node, merged bool, depth int) []pair {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode || depth > maxAliasDepth {
		return out
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if isMergeKey(k) {
			merges = append(merges, v)
			continue
		}
		out = append(out, pair{key: k, value: v, merged: merged})
	}
	for _, m := range merges {
		m = deref(m)
		if m == nil {
			continue
		}
		if m.Kind == yaml.SequenceNode {
			for _, c := range m.Content {
				out = appendPairs(out, c, true, depth+1)
			}
			continue
		}
		out = appendPairs(out, m, true, depth+1)
	}
	return out
}

func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.ShortTag() == "!!merge"
}

// lookup finds the entry named by a key in a mapping, merged entries included.
func lookup(n *yaml.Node, key string) (k, v *yaml.Node) {
	for _, p := range pairs(n) {
		if p.key.Kind == yaml.ScalarNode && p.key.Value == key {
			return p.key, p.value
		}
	}
	return nil, nil
}

// locate walks path (string keys into mappings, int indexes into lists) from
// the document root. It returns the key and value nodes of the last element
// found, and how many path elements were found.
func (s *Stack) locate(path []any) (key, value *yaml.Node, found int) {
	if s == nil || s.doc == nil {
		return nil, nil, 0
	}
	value = deref(s.doc)
	if value != nil && value.Kind == yaml.DocumentNode {
		if len(value.Content) == 0 {
			return nil, nil, 0
		}
		value = deref(value.Content[0])
	}
	for _, p := range path {
		if value == nil {
			break
		}
		var k, v *yaml.Node
		switch p := p.(type) {
		case string:
			k, v = lookup(value, p)
		case int:
			if value.Kind == yaml.SequenceNode && p >= 0 && p < len(value.Content) {
				v = value.Content[p]
			}
		}
		v = deref(v)
		if v == nil {
			break
		}
		key, value = k, v
		found++
	}
	return key, value, found
}

// PosOf returns the position of the value at path in the stack's file. Path
// elements are mapping keys (string) and list indexes (int), e.g.
// s.PosOf("spec", "services", 3, "dependsOn", 1). When the path does not
// exist in full, the position of its deepest existing element is returned,
// so a diagnostic about a missing field lands on the field's parent. Stacks
// built in Go (without a file) get a position with the file name only.
func (s *Stack) PosOf(path ...any) diag.Pos {
	_, v, _ := s.locate(path)
	return s.nodePos(v)
}

// KeyPosOf is PosOf for the key of a mapping entry: the position of "dev" in
// `environments: {dev: ...}` rather than of its value. For list items and the
// document root it is the value's position.
func (s *Stack) KeyPosOf(path ...any) diag.Pos {
	k, v, _ := s.locate(path)
	if k != nil {
		return s.nodePos(k)
	}
	return s.nodePos(v)
}

// NodePos returns the position of a field of a node (or of the node itself
// when no field is given), e.g. s.NodePos(n, "dependsOn", 0).
func (s *Stack) NodePos(n *Node, field ...any) diag.Pos {
	return s.PosOf(append(s.nodePath(n), field...)...)
}

// nodePath returns the path of a node: ("spec", "services", i).
func (s *Stack) nodePath(n *Node) []any {
	for i, m := range s.Spec.Infrastructure {
		if m == n {
			return []any{"spec", "infrastructure", i}
		}
	}
	for i, m := range s.Spec.Services {
		if m == n {
			return []any{"spec", "services", i}
		}
	}
	return []any{"spec"}
}

func (s *Stack) nodePos(n *yaml.Node) diag.Pos {
	if n == nil {
		return diag.Pos{File: s.File}
	}
	return diag.Pos{File: s.File, Line: n.Line, Col: n.Column}
}

// describe names the kind of a node for type errors: `a list`, `a string "x"`.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:37] + "..."
		}
		switch n.ShortTag() {
		case "!!null":
			return "null"
		case "!!bool":
			return "the boolean " + v
		case "!!int", "!!float":
			return "the number " + v
		}
		return fmt.Sprintf("the string %q", v)
	}
	return "an unsupported YAML node"
}

// pathString renders a path for messages: spec.services[2].dependsOn.
func pathString(path []any) string {
	var b strings.Builder
	for _, p := range path {
		switch p := p.(type) {
		case int:
			fmt.Fprintf(&b, "[%d]", p)
		case string:
			if !isPlainKey(p) {
				fmt.Fprintf(&b, "[%q]", p)
				continue
			}
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(p)
		}
	}
	return b.String()
}

func isPlainKey(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
