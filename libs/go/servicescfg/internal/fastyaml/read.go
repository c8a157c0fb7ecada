package fastyaml

import (
	"errors"
	"fmt"
	"math"
	"strconv"

	yaml "go.yaml.in/yaml/v2"
	yamlv3 "go.yaml.in/yaml/v3"
)

// decodeObject parses one rendered YAML document into the JSON-compatible
// value tree an unstructured object holds (map[string]any, []any, string,
// int64, float64, bool, nil).
//
// It reads YAML the way kubectl does (sigs.k8s.io/yaml: YAML 1.1 through
// go.yaml.in/yaml/v2, then JSON) and gives the same values, without the JSON
// round trip that used to be most of a plan's decoding time.
// TestDecodeMatchesKubectl holds it to that. Like kubectl's default strict
// field validation, it refuses a mapping that repeats a key: decoding keeps
// the last value, and the first (often a document that lost its "---") would
// vanish without a word.
func decodeObject(doc []byte) (map[string]any, error) {
	return Decode(doc, false)
}

// Decode parses one rendered YAML document into the values of an
// unstructured object, as decodeObject; with identity set, the fast path
// keeps only what names the object (see fastDecode).
func Decode(doc []byte, identity bool) (map[string]any, error) {
	if m, ok := fastDecode(doc, identity); ok {
		return m, nil
	}
	var raw any
	if err := yaml.Unmarshal(doc, &raw); err != nil {
		return nil, err
	}
	if err := duplicateKey(doc); err != nil {
		return nil, err
	}
	v, err := jsonValue(raw)
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("a Kubernetes object is a mapping, got %s", typeName(v))
	}
	return m, nil
}

func jsonValue(v any) (any, error) {
	switch t := v.(type) {
	case map[any]any:
		m := make(map[string]any, len(t))
		for k, val := range t {
			key, err := jsonKey(k)
			if err != nil {
				return nil, err
			}
			if m[key], err = jsonValue(val); err != nil {
				return nil, err
			}
		}
		return m, nil
	case []any:
		out := make([]any, len(t))
		for i, val := range t {
			var err error
			if out[i], err = jsonValue(val); err != nil {
				return nil, err
			}
		}
		return out, nil
	case int:
		return int64(t), nil
	case int64:
		return t, nil
	case uint64:
		if t <= math.MaxInt64 {
			return int64(t), nil
		}
		return float64(t), nil
	case float64:
		if math.IsNaN(t) || math.IsInf(t, 0) {
			return nil, fmt.Errorf("unsupported value: %v", t)
		}
		// JSON has one number type: a whole float is written in its
		// shortest form and read back as an integer when it fits.
		if t == math.Trunc(t) && math.Abs(t) < 1e21 {
			if n, err := strconv.ParseInt(strconv.FormatFloat(t, 'f', -1, 64), 10, 64); err == nil {
				return n, nil
			}
		}
		return t, nil
	case string, bool, nil:
		return t, nil
	default:
		return nil, fmt.Errorf("unsupported YAML value of type %T", v)
	}
}

// jsonKey turns a YAML mapping key into a JSON object key, as
// sigs.k8s.io/yaml does.
func jsonKey(k any) (string, error) {
	switch t := k.(type) {
	case string:
		return t, nil
	case int:
		return strconv.Itoa(t), nil
	case int64:
		return strconv.FormatInt(t, 10), nil
	case uint64:
		return strconv.FormatUint(t, 10), nil
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64), nil
	case bool:
		return strconv.FormatBool(t), nil
	default:
		return "", errors.New("a mapping key must be a string, number or boolean")
	}
}

func typeName(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case nil:
		return "nothing"
	default:
		return fmt.Sprintf("%T", v)
	}
}

// duplicateKey reports the first key that a mapping of doc repeats as
// written ("yaml: line N: key "x" already set in map"). Keys a merge (<<)
// brings in may be overridden, as YAML allows; go-yaml's strict mode
// refuses those too, so it is not used. Keys are compared as written: 1 and
// "1" collide, as they would in the JSON the object becomes.
func duplicateKey(doc []byte) error {
	var root yamlv3.Node
	if err := yamlv3.Unmarshal(doc, &root); err != nil {
		return nil // go-yaml v2 read it: its reading stands
	}
	var walk func(n *yamlv3.Node, depth int) error
	walk = func(n *yamlv3.Node, depth int) error {
		if n == nil || depth > 10000 {
			return nil
		}
		if n.Kind == yamlv3.MappingNode {
			seen := map[string]bool{}
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := n.Content[i]
				if k.Kind != yamlv3.ScalarNode || k.Tag == "!!merge" {
					continue
				}
				if seen[k.Value] {
					return fmt.Errorf("yaml: line %d: key %q already set in map", k.Line, k.Value)
				}
				seen[k.Value] = true
			}
		}
		for _, c := range n.Content { // aliases are not followed: no cycles
			if err := walk(c, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(&root, 0)
}
