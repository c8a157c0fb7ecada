package plan

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/diag"
	"github.com/codex-k8s/codex-bootstrap/libs/go/servicescfg/internal/fastyaml"
)

// decode splits a rendered manifest into objects. Empty documents (a template
// that rendered nothing) are skipped. source maps a line of the rendered
// output to the template line that wrote it (0 when unknown), for the
// position of a problem; it is called only for problems.
func decode(file string, data []byte, namespace string, identity bool, source func(outLine int) int) ([]*Object, diag.List) {
	var errs diag.List
	var out []*Object
	at := func(outLine int) diag.Pos {
		pos := diag.Pos{File: file}
		if source != nil && outLine > 0 {
			pos.Line = source(outLine)
		}
		return pos
	}
	for i, doc := range splitDocuments(data) {
		if !hasContent(doc.data) {
			continue
		}
		where := fmt.Sprintf("rendered document %d (line %d of the rendered output)", i+1, doc.line)
		obj, err := fastyaml.Decode(doc.data, identity)
		if err != nil {
			msg, line := yamlProblem(err, data, i+1, doc.line)
			hint := "check the YAML the template renders"
			if line > 0 {
				hint = "the quoted line is as rendered: check the indentation (nindent, indent) and the --- between documents that the template gives it"
			}
			errs.AddHint(at(line), hint, "%s", msg)
			continue
		}
		// Placed at the template line that wrote the document: found by
		// rendering again, so only for a problem.
		pos := func() diag.Pos { return at(firstContentLine(doc)) }
		u := &unstructured.Unstructured{Object: obj}
		if kind, ok := obj["kind"].(string); !ok || kind == "" {
			errs.Add(pos(), "%s is not a Kubernetes object: it has no kind", where)
			continue
		}
		if av, ok := obj["apiVersion"].(string); !ok || av == "" {
			errs.Add(pos(), "%s is not a Kubernetes object: %s has no apiVersion", where, u.GetKind())
			continue
		}
		if md, ok := obj["metadata"]; ok {
			if _, isMap := md.(map[string]any); !isMap {
				errs.Add(pos(), "%s: metadata of %s must be a mapping", where, u.GetKind())
				continue
			}
		}
		if u.GetName() == "" {
			errs.Add(pos(), "%s: %s %s has no metadata.name", where, u.GetAPIVersion(), u.GetKind())
			continue
		}
		if problem := nameProblem(u.GroupVersionKind().GroupKind(), u.GetName()); problem != "" {
			errs.Add(pos(), "%s: %s name %q %s", where, u.GetKind(), u.GetName(), problem)
			continue
		}
		if ns := u.GetNamespace(); ns != "" && len(validation.IsDNS1123Label(ns)) > 0 {
			errs.Add(pos(), "%s: %s %s has namespace %q, which is not a valid DNS label", where, u.GetKind(), u.GetName(), ns)
			continue
		}
		if u.GetNamespace() == "" && !ClusterScoped(u.GroupVersionKind().GroupKind()) {
			u.SetNamespace(namespace)
		}
		o := &Object{
			APIVersion: u.GetAPIVersion(),
			Kind:       u.GetKind(),
			Name:       u.GetName(),
			Namespace:  u.GetNamespace(),
			Source:     fmt.Sprintf("%s#%d", file, i),
		}
		if identity {
			// The names are slices of the document's text: copies let the
			// text go, where the plan keeps nothing else of it.
			o.APIVersion, o.Kind = strings.Clone(o.APIVersion), strings.Clone(o.Kind)
			o.Name, o.Namespace = strings.Clone(o.Name), strings.Clone(o.Namespace)
		} else {
			o.Object = u
		}
		out = append(out, o)
	}
	return out, errs
}

// nameProblem says what is wrong with an object's name, as the API server
// would: every name is a path segment; the kinds below, the ones manifests
// hold most, have the stricter rules of their own. "" when it is fine.
func nameProblem(gk schema.GroupKind, name string) string {
	var msgs []string
	switch gk {
	case schema.GroupKind{Kind: "Service"}:
		msgs = validation.IsDNS1035Label(name)
	case schema.GroupKind{Kind: "Namespace"}:
		msgs = validation.IsDNS1123Label(name)
	case schema.GroupKind{Kind: "ConfigMap"}, schema.GroupKind{Kind: "Secret"}, schema.GroupKind{Kind: "ServiceAccount"},
		schema.GroupKind{Kind: "PersistentVolumeClaim"}, schema.GroupKind{Kind: "Pod"},
		schema.GroupKind{Group: "apps", Kind: "Deployment"}, schema.GroupKind{Group: "apps", Kind: "StatefulSet"},
		schema.GroupKind{Group: "apps", Kind: "DaemonSet"}, schema.GroupKind{Group: "batch", Kind: "Job"},
		schema.GroupKind{Group: "batch", Kind: "CronJob"}, schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}:
		msgs = validation.IsDNS1123Subdomain(name)
	default:
		switch {
		case name == "." || name == "..":
			msgs = []string{"may not be '.' or '..'"}
		case strings.ContainsAny(name, "/%"):
			msgs = []string{"may not contain '/' or '%'"}
		}
	}
	// A Job's name becomes a label value of its pods (63 characters); a
	// CronJob adds 11 characters to name its Jobs.
	switch limit := map[schema.GroupKind]int{{Group: "batch", Kind: "Job"}: 63, {Group: "batch", Kind: "CronJob"}: 52}[gk]; {
	case limit > 0 && len(name) > limit:
		msgs = append(msgs, fmt.Sprintf("must be no more than %d characters", limit))
	}
	if len(msgs) == 0 {
		return ""
	}
	return "is not valid: " + strings.Join(msgs, "; ")
}

// yamlLineError matches go-yaml's "yaml: line N: message".
var yamlLineError = regexp.MustCompile(`^yaml: (?:unmarshal errors:\n\s*)?line (\d+): ([^\n]+)`)

// yamlProblem words the YAML error of document n, which starts at line
// start of data: go-yaml counts lines within the document, a reader of the
// rendered output counts them from its top, and wants to see the line. It
// returns the message and that line of the rendered output (0 when the
// error names none).
func yamlProblem(err error, data []byte, n, start int) (string, int) {
	m := yamlLineError.FindStringSubmatch(err.Error())
	if m == nil {
		return fmt.Sprintf("rendered document %d (line %d of the rendered output) is not valid YAML: %v", n, start, err), 0
	}
	rel, convErr := strconv.Atoi(m[1])
	if convErr != nil {
		return fmt.Sprintf("rendered document %d (line %d of the rendered output) is not valid YAML: %v", n, start, err), 0
	}
	line := start + rel - 1
	quoted := ""
	lines := bytes.Split(data, []byte("\n"))
	if line >= 1 && line <= len(lines) && len(bytes.TrimSpace(lines[line-1])) > 0 {
		l := string(bytes.TrimRight(lines[line-1], " \r"))
		if len(l) > 120 {
			l = l[:120] + "..."
		}
		quoted = fmt.Sprintf(" (%q)", l)
	}
	return fmt.Sprintf("rendered document %d is not valid YAML at line %d of the rendered output%s: %s", n, line, quoted, m[2]), line
}

// firstContentLine is the line of the rendered output where a document's
// first line that is neither blank nor a comment is.
func firstContentLine(doc document) int {
	line := doc.line
	for rest := doc.data; len(rest) > 0; line++ {
		l := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			l, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			return line
		}
	}
	return doc.line
}

type document struct {
	data []byte
	line int
}

// splitDocuments splits a YAML stream at "---" lines.
func splitDocuments(data []byte) []document {
	var docs []document
	start, startLine, line := 0, 1, 1
	for lineStart := 0; lineStart <= len(data); line++ {
		end := bytes.IndexByte(data[lineStart:], '\n')
		if end < 0 {
			end = len(data)
		} else {
			end += lineStart
		}
		// Only lines starting with "---" can separate documents.
		if end-lineStart >= 3 && data[lineStart] == '-' {
			text := bytes.TrimRight(data[lineStart:end], " \t\r")
			if bytes.Equal(text, []byte("---")) || bytes.HasPrefix(text, []byte("--- ")) {
				docs = append(docs, document{data: data[start:lineStart], line: startLine})
				start, startLine = min(end+1, len(data)), line+1
			}
		}
		lineStart = end + 1
	}
	docs = append(docs, document{data: data[start:], line: startLine})
	return docs
}

// hasContent reports whether a document has a line that is neither blank
// nor a comment.
func hasContent(doc []byte) bool {
	for len(doc) > 0 {
		line := doc
		if i := bytes.IndexByte(doc, '\n'); i >= 0 {
			line, doc = doc[:i], doc[i+1:]
		} else {
			doc = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return true
		}
	}
	return false
}
