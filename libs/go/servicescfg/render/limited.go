package render

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"text/template"
)

// Every function that can return a string, a list or a map larger than its
// arguments is bound to the render's budget (instance.limited): the size of
// what it returns is checked and charged (Limits.Value, Limits.Alloc), and
// the few that could make one huge value in one call (repeat, until, a
// replace of the empty string, ...) are refused before they run, from their
// arguments. A value can then only grow by a bounded factor per call, and
// every call costs steps, so doubling a string in a loop stops within a few
// dozen iterations, long before memory runs out.

// preCheck returns, from a call's arguments, a bound on the size of what the
// function will return, and the steps it will take beyond one per call.
type preCheck func(args []reflect.Value) (size, steps int64)

// passThrough return one of their arguments, or a part of one: nothing new
// to check.
var passThrough = map[string]bool{
	"default": true, "coalesce": true, "ternary": true, "first": true, "mustFirst": true,
	"last": true, "mustLast": true, "required": true, "dig": true, "get": true, "fail": true,
	"include": true, "tpl": true, "index": true, "slice": true, "and": true, "or": true, "not": true,
	"len": true, "call": true,
}

// preChecks bound what the amplifying functions return before they run.
var preChecks = map[string]preCheck{
	"repeat": func(a []reflect.Value) (int64, int64) {
		n := mul(abs(intArg(a, 0)), int64(strArg(a, 1)))
		return n, 0
	},
	"until":     func(a []reflect.Value) (int64, int64) { return mul(abs(intArg(a, 0)), 8), 0 },
	"untilStep": untilStepSize,
	"seq": func(a []reflect.Value) (int64, int64) {
		var ints []int64
		if len(a) == 1 && a[0].Kind() == reflect.Slice {
			for i := range a[0].Len() {
				ints = append(ints, a[0].Index(i).Int())
			}
		}
		return seqSize(ints), 0
	},
	"replace": func(a []reflect.Value) (int64, int64) {
		return replaceSize(a[0].String(), a[1].String(), a[2].String()), 0
	},
	"regexReplaceAll":            regexReplaceSize,
	"regexReplaceAllLiteral":     regexReplaceSize,
	"mustRegexReplaceAll":        regexReplaceSize,
	"mustRegexReplaceAllLiteral": regexReplaceSize,
	"wrapWith": func(a []reflect.Value) (int64, int64) {
		sep, str := int64(strArg(a, 1)), int64(strArg(a, 2))
		return mul(str+1, sep) + str, 0
	},
	"join": func(a []reflect.Value) (int64, int64) {
		return joinSize(strArg(a, 0), a[1]), 0
	},
	"uniq":        quadratic,
	"mustUniq":    quadratic,
	"without":     quadratic,
	"mustWithout": quadratic,
}

// replaceSize is the length of replace OLD NEW SRC.
func replaceSize(old, repl, src string) int64 {
	if old == "" {
		return mul(int64(len(src))+1, int64(len(repl))) + int64(len(src))
	}
	return mul(int64(strings.Count(src, old)), int64(len(repl))) + int64(len(src))
}

// joinSize bounds what join's separators add: one per element of list.
func joinSize(sep int, list reflect.Value) int64 {
	return mul(int64(listLen(list)), int64(sep))
}

func untilStepSize(a []reflect.Value) (int64, int64) {
	start, stop, step := intArg(a, 0), intArg(a, 1), intArg(a, 2)
	if step == 0 {
		return 0, 0
	}
	return mul(abs(stop-start)/abs(step), 8), 0
}

// regexReplaceSize bounds a regexReplaceAll(REGEX, S, REPL): at most
// len(S)+1 matches, each replaced by REPL whose $references expand to parts
// of the matches, which do not overlap.
func regexReplaceSize(a []reflect.Value) (int64, int64) {
	s, repl := a[1].String(), a[2].String()
	refs := int64(strings.Count(repl, "$"))
	return mul(int64(len(s))+1, int64(len(repl))) + mul(refs+1, int64(len(s))), 0
}

// quadratic charges uniq and without, which compare every element with
// every other.
func quadratic(a []reflect.Value) (int64, int64) {
	n := int64(listLen(a[0]))
	m := n
	if len(a) > 1 {
		m = int64(len(a) - 1)
		if a[len(a)-1].Kind() == reflect.Slice {
			m = int64(a[len(a)-1].Len())
		}
	}
	return 0, mul(n, m) >> 4
}

func intArg(a []reflect.Value, i int) int64 {
	if i >= len(a) {
		return 0
	}
	switch v := a[i]; v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return v.Int()
	case reflect.Interface:
		if v.IsNil() {
			return 0
		}
		return intArg([]reflect.Value{v.Elem()}, 0)
	}
	return 0
}

func strArg(a []reflect.Value, i int) int {
	if i >= len(a) {
		return 0
	}
	v := a[i]
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	if v.Kind() == reflect.String {
		return v.Len()
	}
	return 0
}

func listLen(v reflect.Value) int {
	if v.Kind() == reflect.Interface && !v.IsNil() {
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Slice, reflect.Array, reflect.Map:
		return v.Len()
	}
	return 0
}

var errorType = reflect.TypeFor[error]()

// limitedSpec is how one function is wrapped; built once for all renders.
type limitedSpec struct {
	fn   reflect.Value
	typ  reflect.Type // the wrapper's type: the function's, returning an error too
	pre  preCheck
	errs bool // the function returns an error of its own
	// mutates: the function changes a value in place, so include forgets
	// what it remembered (memo.go)
	mutates bool
}

// limitedSpecs lists the functions to wrap: every function of the map, and
// text/template's printing built-ins, that returns a string, list, map or
// interface and is not a pass-through (nor bound separately: hotFuncs).
var limitedSpecs = sync.OnceValue(func() map[string]limitedSpec {
	funcs := maps2(sharedFuncs(), template.FuncMap{
		"print": fmt.Sprint, "println": fmt.Sprintln,
		"html": template.HTMLEscaper, "js": template.JSEscaper, "urlquery": template.URLQueryEscaper,
	})
	out := map[string]limitedSpec{}
	for name, f := range funcs {
		if passThrough[name] || hotFuncs[name] || disabledFuncs[name].msg != "" {
			continue
		}
		fn := reflect.ValueOf(f)
		t := fn.Type()
		if t.NumOut() == 0 || !sizable(t.Out(0)) {
			continue
		}
		ins := make([]reflect.Type, t.NumIn())
		for i := range ins {
			ins[i] = t.In(i)
		}
		out[name] = limitedSpec{
			fn:      fn,
			typ:     reflect.FuncOf(ins, []reflect.Type{t.Out(0), errorType}, t.IsVariadic()),
			pre:     preChecks[name],
			errs:    t.NumOut() == 2,
			mutates: slices.Contains(mutators, name),
		}
	}
	return out
})

func maps2(a, b template.FuncMap) template.FuncMap {
	out := make(template.FuncMap, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// sizable reports whether a result of type t can be large.
func sizable(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Slice, reflect.Map, reflect.Interface, reflect.Array, reflect.Pointer:
		return true
	}
	return false
}

// limited returns the wrapped functions bound to in's budget.
func (in *instance) limited() template.FuncMap {
	specs := limitedSpecs()
	out := make(template.FuncMap, len(specs)+len(hotFuncs)+1)
	for name, s := range specs {
		if f := in.typed(name, s); f != nil {
			out[name] = f
			continue
		}
		out[name] = reflect.MakeFunc(s.typ, func(args []reflect.Value) []reflect.Value {
			return in.callLimited(name, s, args)
		}).Interface()
	}
	for name, f := range in.hot() {
		out[name] = f
	}
	out[stepFunc] = in.step
	out[rangeFunc] = in.rangeCharge
	return out
}

func (in *instance) callLimited(name string, s limitedSpec, args []reflect.Value) []reflect.Value {
	fail := func(err error) []reflect.Value {
		return []reflect.Value{reflect.Zero(s.typ.Out(0)), reflect.ValueOf(&err).Elem()}
	}
	b := in.b
	var read int64
	for _, a := range args {
		read += int64(strArg([]reflect.Value{a}, 0))
	}
	steps := 1 + read>>8
	if s.pre != nil {
		size, extra := s.pre(args)
		if size > b.lim.Value {
			return fail(b.exceeded("%s would return more than %d bytes", name, b.lim.Value))
		}
		steps += extra
	}
	if err := b.step(steps); err != nil {
		return fail(err)
	}
	if s.mutates {
		clear(in.memo)
	}
	var res []reflect.Value
	if s.typ.IsVariadic() {
		res = s.fn.CallSlice(args)
	} else {
		res = s.fn.Call(args)
	}
	if s.errs && !res[1].IsNil() {
		return res
	}
	if err := b.value(sizeOf(res[0], b.lim.Value), name); err != nil {
		return fail(err)
	}
	if !s.errs {
		res = append(res, reflect.Zero(errorType))
	}
	return res
}

// typed binds the string functions without a pre-check (most of sprig's),
// replace, join and merge without reflection: manifests call them often. nil for other kinds. They
// stop the template with stop rather than return an error (see stop).
func (in *instance) typed(name string, s limitedSpec) any {
	if s.pre != nil && name != "replace" && name != "join" {
		return nil
	}
	check := func(out string, read int) string {
		stop(in.b.step(1 + int64(read)>>8))
		stop(in.b.value(int64(len(out)), name))
		return out
	}
	switch f := s.fn.Interface().(type) {
	case func(int, string) string:
		return func(n int, a string) string { return check(f(n, a), len(a)) }
	case func(...any) []any: // list, tuple
		return func(v ...any) []any {
			stop(in.b.step(1))
			stop(in.b.value(argsSize(v, in.b.lim.Value), name))
			return f(v...)
		}
	case func(string) string:
		return func(a string) string { return check(f(a), len(a)) }
	case func(string, string) string:
		return func(a, b string) string { return check(f(a, b), len(a)+len(b)) }
	case func(string, any) string: // join
		return func(sep string, v any) string {
			if s.pre != nil && joinSize(len(sep), reflect.ValueOf(v)) > in.b.lim.Value {
				stop(in.b.exceeded("%s would return more than %d bytes", name, in.b.lim.Value))
			}
			return check(f(sep, v), len(sep))
		}
	case func(map[string]any, ...map[string]any) any: // merge, mergeOverwrite
		return func(dst map[string]any, srcs ...map[string]any) any {
			stop(in.b.step(1))
			if s.mutates {
				clear(in.memo)
			}
			out := f(dst, srcs...)
			stop(in.b.value(valueSize(out, in.b.lim.Value), name))
			return out
		}
	case func(string, string, string) string:
		return func(a, b, c string) string {
			if s.pre != nil && replaceSize(a, b, c) > in.b.lim.Value { // replace
				stop(in.b.exceeded("%s would return more than %d bytes", name, in.b.lim.Value))
			}
			return check(f(a, b, c), len(a)+len(b)+len(c))
		}
	}
	return nil
}

// stop ends the template being executed with err, when there is one.
// text/template reports a panic of a function it calls exactly as an error
// the function returns ("error calling NAME: ...", at the call), while a
// second result costs an allocation on every call (the call goes through
// reflect, which boxes each result): the functions templates call most
// return only their value. Only these wrappers stop this way, and only with
// an error; text/template recovers it before Execute returns.
func stop(err error) {
	if err != nil {
		panic(err)
	}
}

// argsSize is what a list or dict built from v takes, counted up to
// limit+1: the elements' sizes, without walking the result.
func argsSize(v []any, limit int64) int64 {
	var size int64 = 8
	for _, x := range v {
		if size > limit {
			break
		}
		size += valueSize(x, limit)
	}
	return size
}

// sizeOf is the size of a function's result, counted up to limit+1.
func sizeOf(v reflect.Value, limit int64) int64 {
	if v.Kind() == reflect.String {
		return int64(v.Len())
	}
	if !v.IsValid() || !v.CanInterface() {
		return 0
	}
	return valueSize(v.Interface(), limit)
}

// maxValueDepth bounds how deep valueSize follows nested lists and maps: a
// value that refers to itself is deeper than any.
const maxValueDepth = 1000

// valueSize returns the bytes v would take when printed, roughly: a string
// its length, anything else 8 bytes, lists and maps the sum of their
// elements, counted as often as an element appears (a list that holds
// another twice counts it twice, as printing it would). It stops counting
// once the sum passes limit.
func valueSize(v any, limit int64) int64 {
	s := sizer{limit: limit}
	s.add(v, 0)
	return s.n
}

type sizer struct{ n, limit int64 }

func (s *sizer) add(v any, depth int) {
	if s.n > s.limit {
		return
	}
	if depth > maxValueDepth {
		s.n = s.limit + 1
		return
	}
	switch v := v.(type) {
	case string:
		s.n += 8 + int64(len(v))
	case []any:
		s.n += 8
		for _, x := range v {
			if s.add(x, depth+1); s.n > s.limit {
				return
			}
		}
	case map[string]any:
		s.n += 8
		for k, x := range v {
			s.n += int64(len(k))
			if s.add(x, depth+1); s.n > s.limit {
				return
			}
		}
	case []string:
		s.n += 8
		for _, x := range v {
			s.n += 8 + int64(len(x))
		}
	case map[string]string:
		s.n += 8
		for k, x := range v {
			s.n += 8 + int64(len(k)+len(x))
		}
	case nil, bool, int, int64, float64, *Context, Context, *Service, Runtime, Workspace:
		s.n += 8
	default:
		s.reflected(reflect.ValueOf(v), depth)
	}
}

func (s *sizer) reflected(v reflect.Value, depth int) {
	switch v.Kind() {
	case reflect.String:
		s.n += 8 + int64(v.Len())
	case reflect.Slice, reflect.Array:
		s.n += 8
		if v.Type().Elem().Kind() <= reflect.Complex128 { // numbers and bools
			s.n += 8 * int64(v.Len())
			return
		}
		for i := range v.Len() {
			if s.add(v.Index(i).Interface(), depth+1); s.n > s.limit {
				return
			}
		}
	case reflect.Map:
		s.n += 8
		for it := v.MapRange(); it.Next(); {
			s.add(it.Key().Interface(), depth+1)
			if s.add(it.Value().Interface(), depth+1); s.n > s.limit {
				return
			}
		}
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			s.n += 8
			return
		}
		s.add(v.Elem().Interface(), depth+1)
	default:
		s.n += 8
	}
}

// hotFuncs are the functions manifests call most, bound to the budget by
// hand (hot) instead of through reflection.
var hotFuncs = map[string]bool{
	"indent": true, "nindent": true, "quote": true, "dict": true, "printf": true, "toYaml": true,
}

// hot returns hotFuncs bound to in's budget; like typed, they stop the
// template rather than return an error.
func (in *instance) hot() template.FuncMap {
	f := sharedFuncs()
	quote := f["quote"].(func(...any) string)
	dict := f["dict"].(func(...any) map[string]any)
	return template.FuncMap{
		"indent": func(spaces int, v string) string {
			stop(in.indentSize(spaces, v, "indent"))
			return indent(spaces, v)
		},
		"nindent": func(spaces int, v string) string {
			stop(in.indentSize(spaces, v, "nindent"))
			return nindent(spaces, v)
		},
		"quote": func(v ...any) string {
			s := quote(v...)
			stop(in.b.value(int64(len(s)), "quote"))
			return s
		},
		"dict": func(v ...any) map[string]any {
			// Sized from the arguments: the same sum, without walking
			// the map.
			stop(in.b.value(argsSize(v, in.b.lim.Value), "dict"))
			return dict(v...)
		},
		"printf": func(format string, v ...any) string {
			s := fmt.Sprintf(format, v...)
			stop(in.b.value(int64(len(s)), "printf"))
			return s
		},
		"toYaml": func(v any) string {
			if size := valueSize(v, in.b.lim.Value); size > in.b.lim.Value {
				stop(in.b.exceeded("toYaml would return more than %d bytes", in.b.lim.Value))
			}
			s, err := toYAML(v)
			stop(err)
			stop(in.b.value(int64(len(s)), "toYaml"))
			return s
		},
	}
}

func (in *instance) indentSize(spaces int, v, name string) error {
	if spaces < 0 {
		return userError(fmt.Sprintf("%s: negative width %d", name, spaces))
	}
	lines := int64(strings.Count(v, "\n") + 1)
	return in.b.value(mul(lines, int64(spaces))+int64(len(v)), name)
}
