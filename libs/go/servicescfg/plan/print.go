package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// String renders the plan as text: the header, then each group in order with
// its nodes, their levels, dependencies and objects. Tests compare it as a
// golden file, so it is stable.
func (p *Plan) String() string {
	var b strings.Builder
	_ = p.WriteText(&b)
	return b.String()
}

// WriteText writes the text form of the plan.
func (p *Plan) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "environment: %s\n", p.Environment)
	if p.Slot != "" {
		fmt.Fprintf(&b, "slot:        %s\n", p.Slot)
	}
	fmt.Fprintf(&b, "namespace:   %s\n", p.Namespace)
	reload := "off"
	if p.HotReload {
		reload = "on"
	}
	fmt.Fprintf(&b, "runtime:     %s (hot reload %s)\n", p.Runtime, reload)
	fmt.Fprintf(&b, "order:       %s\n", strings.Join(p.Order, " -> "))
	if len(p.Secrets) > 0 {
		b.WriteString("secrets:\n")
		for _, s := range p.Secrets {
			var keys []string
			for _, k := range s.Keys {
				switch {
				case k.FromConfig != "":
					keys = append(keys, k.Key+" <- config "+k.FromConfig)
				default:
					keys = append(keys, fmt.Sprintf("%s <- generated (%d)", k.Key, k.Generate))
				}
			}
			fmt.Fprintf(&b, "  Secret %s/%s: %s\n", p.Namespace, s.Name, strings.Join(keys, ", "))
		}
	}
	group := ""
	for i, s := range p.Nodes {
		if s.Group != group {
			group = s.Group
			fmt.Fprintf(&b, "group %s\n", group)
		}
		deps := "-"
		if len(s.DependsOn) > 0 {
			deps = strings.Join(s.DependsOn, ", ")
		}
		fmt.Fprintf(&b, "  %d. %s (level %d, depends on: %s)\n", i+1, s.Name, s.Level, deps)
		for _, o := range s.Objects {
			ref := o.Name
			if o.Namespace != "" {
				ref = o.Namespace + "/" + o.Name
			}
			fmt.Fprintf(&b, "       %s %s %s\n", o.APIVersion, o.Kind, ref)
		}
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(&b, "skipped %s: %s\n", s.Name, s.Reason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the plan as one indented JSON document.
func (p *Plan) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(p)
}
