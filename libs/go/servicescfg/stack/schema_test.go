package stack

import (
	"bytes"
	"encoding/json"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

//go:generate go test -run TestSchemaUpToDate -update

var update = flag.Bool("update", false, "rewrite schema/services.schema.json from the Go types")

// repoRoot is the repository root, from this package's directory.
const repoRoot = "../../../.."

var schemaPath = filepath.Join(repoRoot, "schema", "services.schema.json")

// TestSchemaUpToDate fails when the committed JSON Schema differs from what
// the Go types produce; -update rewrites it.
func TestSchemaUpToDate(t *testing.T) {
	got := generateSchema(t)
	if *update {
		if err := os.MkdirAll(filepath.Dir(schemaPath), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(schemaPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatalf("%v (generate it: go test ./libs/go/servicescfg/stack -run TestSchemaUpToDate -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("schema/services.schema.json is stale: run go test ./libs/go/servicescfg/stack -run TestSchemaUpToDate -update")
	}
}

// TestSchemaStacks validates the project's real stacks against the
// committed schema, and loads them without problems.
func TestSchemaStacks(t *testing.T) {
	sch := compileSchema(t)
	for _, file := range []string{"services.yaml", "examples/new-project/services.yaml"} {
		t.Run(file, func(t *testing.T) {
			path := filepath.Join(repoRoot, filepath.FromSlash(file))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(yamlToJSON(t, data)); err != nil {
				t.Errorf("%s does not match the schema:\n%v", file, err)
			}
			if want := "# yaml-language-server: $schema="; !bytes.HasPrefix(data, []byte(want)) {
				t.Errorf("%s does not start with %q", file, want)
			} else {
				line, _, _ := strings.Cut(string(data[len(want):]), "\n")
				ref := filepath.Join(filepath.Dir(path), filepath.FromSlash(strings.TrimSpace(line)))
				if filepath.Clean(ref) != filepath.Clean(schemaPath) {
					t.Errorf("%s points at %s, not at schema/services.schema.json", file, line)
				}
			}
			if _, err := Load(path); err != nil {
				t.Errorf("load %s:\n%v", file, err)
			}
		})
	}
}

// TestSchemaAgreesWithLoader checks the schema against the loader's own
// cases: every valid stack matches it, and it rejects what strict decoding
// and the required fields reject.
func TestSchemaAgreesWithLoader(t *testing.T) {
	sch := compileSchema(t)
	for _, c := range validCases {
		if err := sch.Validate(yamlToJSON(t, []byte(c.src))); err != nil {
			t.Errorf("valid case %q does not match the schema:\n%v", c.name, err)
		}
	}
	for _, name := range []string{
		"unknown field", "unknown top-level field", "string where a list is expected",
		"list where a string is expected", "mapping where a list is expected", "boolean expected",
		"integer expected", "invalid duration", "unsupported apiVersion stops decoding", "unsupported kind",
		"missing metadata.name", "missing project", "project not a DNS label", "missing environments",
		"no environment", "environment without namespaceTemplate", "node without name",
		"node without manifests", "node with empty manifests", "node name not a DNS label",
		"unknown node kind", "secret value with neither source", "secret value with both sources",
		"generate length 0", "generate length too long", "generate charset", "secret name",
		"secret key", "secret without data", "variable name", "step without script", "step env entry",
		"workspace mount path",
	} {
		found := false
		for _, c := range errorCases {
			if c.name != name {
				continue
			}
			found = true
			if err := sch.Validate(yamlToJSON(t, []byte(c.src))); err == nil {
				t.Errorf("the schema accepts error case %q", name)
			}
		}
		if !found {
			t.Errorf("no error case %q", name)
		}
	}
}

func compileSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	const url = "file:///services.schema.json"
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatal(err)
	}
	return sch
}

// yamlToJSON turns a YAML document into the JSON value a schema validates.
func yamlToJSON(t *testing.T, data []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Schema fragments shared by the generator.
var (
	dnsLabel  = map[string]any{"type": "string", "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`, "maxLength": 63}
	envName   = map[string]any{"type": "string", "pattern": envNameRE.String()}
	scalar    = map[string]any{"type": []string{"string", "number", "boolean"}}
	scalarMap = map[string]any{"type": "object", "additionalProperties": scalar}
)

// fieldSchemas refine the schema of single fields, keyed TYPE.yamlName: what
// the validator enforces that the Go types cannot say.
var fieldSchemas = map[string]map[string]any{
	"Stack.apiVersion":        {"const": APIVersion},
	"Stack.kind":              {"const": Kind},
	"Metadata.name":           {"type": "string", "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, "maxLength": 253},
	"Spec.project":            dnsLabel,
	"Spec.versions":           scalarMap,
	"Spec.vars":               scalarMap,
	"Spec.environments":       {"minProperties": 1, "propertyNames": dnsLabel},
	"Environment.vars":        scalarMap,
	"Environment.versions":    scalarMap,
	"Overlay.vars":            scalarMap,
	"Node.name":               dnsLabel,
	"Node.vars":               scalarMap,
	"Node.manifests":          {"minItems": 1},
	"Node.kind":               {"enum": []string{KindGo, KindFrontend, KindOther}},
	"Deploy.order":            {"items": map[string]any{"type": "string", "minLength": 1}, "uniqueItems": true},
	"Workspace.mountPath":     {"pattern": "^/"},
	"Workspace.accessMode":    {"enum": []string{"ReadWriteOnce", "ReadWriteMany", "ReadOnlyMany", "ReadWriteOncePod"}},
	"Workspace.uid":           {"minimum": 0},
	"Workspace.gid":           {"minimum": 0},
	"Workspace.fsGroup":       {"minimum": 0},
	"Secret.name":             {"type": "string", "pattern": `^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`, "maxLength": 253},
	"Secret.data":             {"minProperties": 1, "propertyNames": map[string]any{"pattern": secretKeyRE.String()}},
	"Generate.length":         {"minimum": MinSecretLength, "maximum": MaxSecretLength},
	"Generate.charset":        {"enum": []string{CharsetAlphanumeric, CharsetHex, CharsetBase64}},
	"Variable.name":           envName,
	"Variable.default":        scalar,
	"Step.env":                {"items": envName},
	"Condition.type":          {"minLength": 1},
	"Node.manifests.items":    {"minLength": 1},
	"Templates.partials":      {"items": map[string]any{"type": "string", "minLength": 1}},
	"Bootstrap.configFile":    {"minLength": 1},
	"Step.script":             {"minLength": 1},
	"Environment.from":        {"minLength": 1},
	"Environment.runtime":     {"minLength": 1},
	"Environment.overlays":    {"propertyNames": dnsLabel},
	"SecretValue.fromConfig":  envName,
	"Readiness.conditions":    {"minItems": 1},
	"Metadata.labels":         scalarMap,
	"Metadata.annotations":    scalarMap,
	"Environment.labels":      scalarMap,
	"Environment.annotations": scalarMap,
}

// typeSchemas add keywords to whole types.
var typeSchemas = map[string]map[string]any{
	// Each environment has a runtime and a namespaceTemplate, or inherits.
	"Environment": {"anyOf": []any{
		map[string]any{"required": []string{"from"}},
		map[string]any{"required": []string{"runtime", "namespaceTemplate"}},
	}},
	// Exactly one source per value.
	"SecretValue": {"oneOf": []any{
		map[string]any{"required": []string{"fromConfig"}},
		map[string]any{"required": []string{"generate"}},
	}},
}

// requiredFields are the fields the validator requires, by type.
var requiredFields = map[string][]string{
	"Stack":     {"apiVersion", "kind", "metadata", "spec"},
	"Metadata":  {"name"},
	"Spec":      {"project", "environments"},
	"Node":      {"name", "manifests"},
	"Secret":    {"name", "data"},
	"Variable":  {"name"},
	"Step":      {"name", "script"},
	"Condition": {"type"},
}

// durationPattern matches what time.ParseDuration reads.
const durationPattern = `^([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h)(([0-9]+(\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))*$|^0$`

type schemaGen struct {
	defs map[string]any
	docs map[string]string
}

// generateSchema builds the JSON Schema of services.yaml from the Go types
// and their doc comments.
func generateSchema(t *testing.T) []byte {
	t.Helper()
	g := &schemaGen{defs: map[string]any{}, docs: typeDocs(t)}
	root := g.object(reflect.TypeFor[Stack]())
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "codex-k8s ServiceStack (services.yaml)"
	root["$comment"] = "Generated from libs/go/servicescfg/stack/types.go by go test ./libs/go/servicescfg/stack -run TestSchemaUpToDate -update; do not edit."
	root["$defs"] = g.defs
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(root); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func (g *schemaGen) schema(t reflect.Type, key string) map[string]any {
	if t == durationType {
		return map[string]any{"type": "string", "pattern": durationPattern}
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem(), key)
	case reflect.Struct:
		name := t.Name()
		if _, done := g.defs[name]; !done {
			g.defs[name] = nil // guards recursion
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), key+".values")}
	case reflect.Slice:
		s := map[string]any{"type": "array", "items": g.schema(t.Elem(), key+".items")}
		for k, v := range fieldSchemas[key+".items"] {
			s["items"].(map[string]any)[k] = v
		}
		return s
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return map[string]any{"type": "integer"}
	}
	panic("no schema for " + t.String())
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, ok := yamlName(f)
		if !ok {
			continue
		}
		key := t.Name() + "." + name
		s := g.schema(f.Type, key)
		for k, v := range fieldSchemas[key] {
			s[k] = v
		}
		if d := g.docs[t.Name()+"."+f.Name]; d != "" {
			s["description"] = d
		}
		props[name] = s
	}
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if r := requiredFields[t.Name()]; len(r) > 0 {
		out["required"] = r
	}
	for k, v := range typeSchemas[t.Name()] {
		out[k] = v
	}
	if d := g.docs[t.Name()]; d != "" {
		out["description"] = d
	}
	return out
}

// typeDocs reads the doc comments of types.go: "Type" and "Type.Field".
func typeDocs(t *testing.T) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "types.go", nil, parser.ParseComments)
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]string{}
	ws := regexp.MustCompile(`\s+`)
	text := func(g *ast.CommentGroup) string { return strings.TrimSpace(ws.ReplaceAllString(g.Text(), " ")) }
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.TYPE {
			continue
		}
		for _, spec := range gd.Specs {
			ts := spec.(*ast.TypeSpec)
			doc := ts.Doc
			if doc == nil && len(gd.Specs) == 1 {
				doc = gd.Doc
			}
			if doc != nil {
				docs[ts.Name.Name] = text(doc)
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, field := range st.Fields.List {
				if field.Doc == nil {
					continue
				}
				for _, n := range field.Names {
					docs[ts.Name.Name+"."+n.Name] = text(field.Doc)
				}
			}
		}
	}
	return docs
}
