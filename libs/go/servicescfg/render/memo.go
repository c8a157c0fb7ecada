package render

import (
	"reflect"
	"text/template/parse"
)

// Manifests include the same partial with the same data many times (labels
// in metadata, in the selector and in the pod template). Within one render,
// include remembers the output of a pure partial for a given data value and
// returns it again instead of executing the partial anew.
//
// A partial is pure when its output depends only on its data: it calls no
// function whose result varies (random values, the clock, key generation),
// no function that changes its arguments, no tpl and no include with a
// computed name, and every partial it reaches is pure. Data is identified by
// reference (a map or a pointer, as the root context and dict values are);
// the memo keeps the value alive, so its address cannot be reused while
// remembered. Any call of a function that changes a value in place (set,
// unset, merge, ...) forgets everything remembered so far.

// impureFuncs are the functions whose result is not determined by their
// arguments, or that change them.
var impureFuncs = map[string]bool{
	"tpl": true, "now": true, "uuidv4": true, "shuffle": true,
	"randAlpha": true, "randAlphaNum": true, "randAscii": true, "randNumeric": true, "randBytes": true, "randInt": true,
	"genPrivateKey": true, "genCA": true, "genCAWithKey": true, "genSelfSignedCert": true, "genSelfSignedCertWithKey": true,
	"genSignedCert": true, "genSignedCertWithKey": true, "encryptAES": true, "bcrypt": true, "htpasswd": true,
	"set": true, "unset": true, "merge": true, "mergeOverwrite": true, "mustMerge": true, "mustMergeOverwrite": true,
}

// mutators change a value in place; calling one clears the memo (see
// instance.callLimited).
var mutators = []string{"set", "unset", "merge", "mergeOverwrite", "mustMerge", "mustMergeOverwrite"}

// markPure computes which partials are pure (see above).
func (e *Engine) markPure(units []*unit) {
	impure := map[string]bool{}
	calls := map[string][]string{}
	for _, u := range units {
		for name, t := range u.defs {
			if p, ok := e.partials[name]; !ok || p.tree != t {
				continue
			}
			walk(t.Root, func(n parse.Node) {
				switch n := n.(type) {
				case *parse.IdentifierNode:
					if impureFuncs[n.Ident] {
						impure[name] = true
					}
				case *parse.TemplateNode:
					calls[name] = append(calls[name], n.Name)
				case *parse.CommandNode:
					if id, ok := n.Args[0].(*parse.IdentifierNode); ok && id.Ident == "include" {
						if len(n.Args) < 2 {
							impure[name] = true
						} else if s, ok := n.Args[1].(*parse.StringNode); ok {
							calls[name] = append(calls[name], s.Text)
						} else {
							impure[name] = true
						}
					}
				}
			})
		}
	}
	// A partial that reaches an impure or a late-bound template is impure:
	// propagate until nothing changes.
	for changed := true; changed; {
		changed = false
		for name := range e.partials {
			if impure[name] {
				continue
			}
			for _, c := range calls[name] {
				if _, ok := e.partials[c]; !ok || impure[c] {
					impure[name], changed = true, true
					break
				}
			}
		}
	}
	e.pure = make(map[string]bool, len(e.partials))
	for name := range e.partials {
		if !impure[name] {
			e.pure[name] = true
		}
	}
}

type memoKey struct {
	name string
	typ  reflect.Type
	ptr  uintptr
}

type memoEntry struct {
	data any // keeps the value alive while its address is a key
	out  string
}

// memoKeyOf returns the key for including name with data, when data is a
// reference the memo can identify.
func memoKeyOf(name string, data any) (memoKey, bool) {
	v := reflect.ValueOf(data)
	switch v.Kind() {
	case reflect.Map, reflect.Pointer:
		if v.IsNil() {
			return memoKey{}, false
		}
		return memoKey{name: name, typ: v.Type(), ptr: v.Pointer()}, true
	}
	return memoKey{}, false
}
