package learn

import (
	"bytes"
	"fmt"
	"go/ast"
	"go/format"
	"go/parser"
	"go/token"
	"sort"
	"strconv"
	"strings"
)

// A hand-out is a step with its new primitive taken out: the code the
// learner writes. It is made from the step itself, never kept as a copy,
// so it cannot drift from the step: the functions listed here keep their
// doc comments and signatures, and their bodies become a call to TODO,
// which stops the program with a line that says what is missing and
// where the chapter explains it; the step's namespace flag becomes a call
// to TODOFlag, likewise. Everything else is the step, byte for byte
// (Restore puts the bodies back, and the tests check the result is the
// step again). The previous steps' primitives all stay: what they taught
// keeps working.

// Stub is one function of a step that the hand-out takes out.
type Stub struct {
	Func string // the function's name
	What string // what its body does, for the TODO line
}

// Handout is what the hand-out of one step takes out.
type Handout struct {
	// Flag is the name of the namespace the step adds ("uts" for the
	// entry {"uts", unix.CLONE_NEWUTS}), or "" if it adds none.
	Flag string
	// Stubs are the functions whose bodies the learner writes.
	Stubs []Stub
}

// handouts are the hand-outs of the steps, by number.
var handouts = map[string]Handout{
	"01": {Flag: "uts", Stubs: []Stub{
		{"setHostname", "give the new UTS namespace its hostname, with sethostname(2)"}}},
	"02": {Flag: "pid"},
	"03": {Flag: "mnt", Stubs: []Stub{
		{"makeMountsPrivate", "make every mount private, so that nothing propagates to the host (mount --make-rprivate /)"},
		{"pivotRoot", "pivot_root into the root file system"},
		{"mountProc", "mount a fresh /proc, which shows the new PID namespace"},
		{"unmountOldRoot", "unmount the host's root from the old root, and remove its directory"}}},
	"04": {Flag: "ipc", Stubs: []Stub{
		{"mountMqueue", "mount an mqueue file system at /dev/mqueue, which shows this IPC namespace's queues"}}},
	"05": {Flag: "net", Stubs: []Stub{
		{"ensureBridge", "make the bridge, with the subnet's first address, and bring it up (ip link add … type bridge)"},
		{"configureInside", "set up the child's end: named eth0, its address, lo and eth0 up, the default route"}}},
	"06": {Flag: "user", Stubs: []Stub{
		{"idMappings", "turn a --uid-map or --gid-map value into the user namespace's id map"}}},
	"07": {Stubs: []Stub{
		{"writeLimitsV2", "write the limits into the cgroup v2 files: memory.max, pids.max, cpu.max"},
		{"writeLimitsV1", "write the limits into the cgroup v1 files"},
		{"joinCgroup", "move the child into its cgroups: its pid into cgroup.procs"}}},
	"08": {Stubs: []Stub{
		{"mountOverlay", "mount the overlay: the root file system read-only below, the run's upper and work directories above"}}},
}

// TodoGo is the hand-out's todo.go: the stubs' helpers, beside main.go so
// that `make solution-NN` compares main.go alone with the step.
const TodoGo = `package main

// The kit's helpers for the TODO stubs in main.go (grep TODO main.go
// finds them). Each stub stops the program with one line: what is
// missing, and where the chapter explains it. Replace a stub with your code; when no stub is left, this file is
// no longer used (you may delete it).

import (
	"fmt"
	"os"
	"runtime"
	"strings"
)

// TODO stops the program: the code of TODO(id) is missing. In the test
// binary of make check-NN, a test that calls a stub itself (not through
// the program) fails alone: the others go on.
func TODO(id, what, where string) {
	fmt.Fprintf(os.Stderr, "%s: TODO(%s): %s — see %s\n", step, id, what, where)
	if strings.HasSuffix(os.Args[0], ".test") && os.Getenv("GOCELL_TEST_RUN_MAIN") != "1" {
		runtime.Goexit()
	}
	os.Exit(exitSetup)
}

// TODOError is TODO for a function that returns an error: it returns
// one, so that its caller cleans up what it made before it stops.
func TODOError(id, what, where string) error {
	return fmt.Errorf("TODO(%s): %s — see %s", id, what, where)
}

// TODOFlag is TODO, for a clone(2) flag. It runs as the program starts,
// where the list of namespaces is made; but the test binary of
// make check-NN starts that way too, before it runs this program (with
// GOCELL_TEST_RUN_MAIN=1), and must live to run the checks.
func TODOFlag(id, what, where string) uintptr {
	if strings.HasSuffix(os.Args[0], ".test") && os.Getenv("GOCELL_TEST_RUN_MAIN") != "1" {
		return 0
	}
	TODO(id, what, where)
	return 0
}
`

// edit is one replacement in a file: the bytes from start to end.
type edit struct {
	start, end int
	text       string
}

// MakeHandout returns the hand-out of step nn (such as "03") made from
// src, the step's main.go.
func MakeHandout(nn string, src []byte) ([]byte, error) {
	h, ok := handouts[nn]
	if !ok {
		return nil, fmt.Errorf("no step %s", nn)
	}
	where := fmt.Sprintf("lessons/%s.md, %q", StepDir(nn), "The kernel interface")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var edits []edit
	if h.Flag != "" {
		e, ok := flagEntry(fset, f, h.Flag)
		if !ok {
			return nil, fmt.Errorf("step %s: no namespace entry %q", nn, h.Flag)
		}
		what := fmt.Sprintf("the clone(2) flag of a new %s namespace", strings.ToUpper(h.Flag))
		e.text = fmt.Sprintf("TODOFlag(%q, %q, %q)", nn, what, where)
		edits = append(edits, e)
	}
	for _, s := range h.Stubs {
		fn := funcDecl(f, s.Func)
		if fn == nil {
			return nil, fmt.Errorf("step %s: no function %s", nn, s.Func)
		}
		edits = append(edits, edit{
			start: fset.Position(fn.Body.Lbrace).Offset + 1,
			end:   fset.Position(fn.Body.Rbrace).Offset,
			text:  "\n" + stubBody(fn, nn, s.What, where),
		})
	}
	out := apply(src, edits)
	out, err = dropUnusedImports(out)
	if err != nil {
		return nil, fmt.Errorf("step %s: %w", nn, err)
	}
	return format.Source(out)
}

// Restore puts back into a hand-out what MakeHandout took out of step,
// and returns the result: the step again, if the hand-out is untouched.
func Restore(nn string, handout, step []byte) ([]byte, error) {
	h := handouts[nn]
	sf, hf := token.NewFileSet(), token.NewFileSet()
	s, err := parser.ParseFile(sf, "main.go", step, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	o, err := parser.ParseFile(hf, "main.go", handout, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	var edits []edit
	if h.Flag != "" {
		want, _ := flagEntry(sf, s, h.Flag)
		got, ok := flagEntry(hf, o, h.Flag)
		if !ok {
			return nil, fmt.Errorf("no namespace entry %q", h.Flag)
		}
		got.text = string(step[want.start:want.end])
		edits = append(edits, got)
	}
	for _, st := range h.Stubs {
		want, got := funcDecl(s, st.Func), funcDecl(o, st.Func)
		if want == nil || got == nil {
			return nil, fmt.Errorf("no function %s", st.Func)
		}
		edits = append(edits, edit{
			start: hf.Position(got.Body.Lbrace).Offset,
			end:   hf.Position(got.Body.Rbrace).Offset + 1,
			text: string(step[sf.Position(want.Body.Lbrace).Offset : sf.Position(
				want.Body.Rbrace).Offset+1]),
		})
	}
	out := apply(handout, edits)
	// The imports the stubs no longer needed come back as they were.
	return restoreImports(out, step)
}

// flagEntry finds the element {"name", FLAG} of `var namespaces` and
// returns the span of FLAG.
func flagEntry(fset *token.FileSet, f *ast.File, name string) (edit, bool) {
	var found edit
	ok := false
	ast.Inspect(f, func(n ast.Node) bool {
		lit, isLit := n.(*ast.CompositeLit)
		if !isLit || len(lit.Elts) != 2 {
			return true
		}
		s, isStr := lit.Elts[0].(*ast.BasicLit)
		if !isStr || s.Kind != token.STRING || s.Value != strconv.Quote(name) {
			return true
		}
		found = edit{start: fset.Position(lit.Elts[1].Pos()).Offset,
			end: fset.Position(lit.Elts[1].End()).Offset}
		ok = true
		return false
	})
	return found, ok
}

// funcDecl finds the top-level function name.
func funcDecl(f *ast.File, name string) *ast.FuncDecl {
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil && fn.Name.Name == name {
			return fn
		}
	}
	return nil
}

// stubBody is the body of a stub: a call to TODO, and the return its
// results need to compile.
func stubBody(fn *ast.FuncDecl, nn, what, where string) string {
	call := fmt.Sprintf("TODO(%q, %q, %q)", nn, what, where)
	var results []ast.Expr
	if fn.Type.Results != nil {
		for _, r := range fn.Type.Results.List {
			n := max(1, len(r.Names))
			for i := 0; i < n; i++ {
				results = append(results, r.Type)
			}
		}
	}
	switch {
	case len(results) == 0:
		return "\t" + call + "\n"
	case isIdent(results[len(results)-1], "error"):
		// An error, not an exit: the caller's clean-up runs (the host's
		// side makes cgroups, links and directories before these).
		var vals []string
		for _, r := range results[:len(results)-1] {
			vals = append(vals, zero(r))
		}
		call = "TODOError" + strings.TrimPrefix(call, "TODO")
		return "\treturn " + strings.Join(append(vals, call), ", ") + "\n"
	}
	var vals []string
	for _, r := range results {
		vals = append(vals, zero(r))
	}
	return "\t" + call + "\n\treturn " + strings.Join(vals, ", ") + "\n"
}

// zero is the zero value of type t, as source.
func zero(t ast.Expr) string {
	switch t := t.(type) {
	case *ast.Ident:
		switch t.Name {
		case "string":
			return `""`
		case "bool":
			return "false"
		case "error", "any":
			return "nil"
		case "int", "int8", "int16", "int32", "int64", "uint", "uint8",
			"uint16", "uint32", "uint64", "uintptr", "float32", "float64",
			"byte", "rune":
			return "0"
		}
	case *ast.ArrayType:
		if t.Len == nil {
			return "nil"
		}
	case *ast.StarExpr, *ast.MapType, *ast.FuncType, *ast.ChanType, *ast.InterfaceType:
		return "nil"
	}
	var b bytes.Buffer
	format.Node(&b, token.NewFileSet(), t)
	return "*new(" + b.String() + ")"
}

func isIdent(e ast.Expr, name string) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == name
}

// apply makes the edits, which do not overlap, in src.
func apply(src []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start < edits[j].start })
	var out bytes.Buffer
	at := 0
	for _, e := range edits {
		out.Write(src[at:e.start])
		out.WriteString(e.text)
		at = e.end
	}
	out.Write(src[at:])
	return out.Bytes()
}

// dropUnusedImports removes the imports that no code of src uses any
// more: the stubs took away their only callers, and Go refuses an unused
// import.
func dropUnusedImports(src []byte) ([]byte, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "main.go", src, parser.ParseComments)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if sel, ok := n.(*ast.SelectorExpr); ok {
			if id, ok := sel.X.(*ast.Ident); ok {
				used[id.Name] = true
			}
		}
		return true
	})
	var edits []edit
	for _, imp := range f.Imports {
		if used[importName(imp)] {
			continue
		}
		// The whole line, with its newline.
		start := fset.Position(imp.Pos()).Offset
		for start > 0 && src[start-1] != '\n' {
			start--
		}
		end := fset.Position(imp.End()).Offset
		for end < len(src) && src[end] != '\n' {
			end++
		}
		edits = append(edits, edit{start: start, end: end + 1})
	}
	return apply(src, edits), nil
}

// restoreImports gives src the import block of step, when they differ
// only by imports dropUnusedImports removed.
func restoreImports(src, step []byte) ([]byte, error) {
	block := func(b []byte) (int, int, error) {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, "main.go", b, parser.ImportsOnly)
		if err != nil {
			return 0, 0, err
		}
		for _, d := range f.Decls {
			if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.IMPORT {
				return fset.Position(g.Pos()).Offset, fset.Position(g.End()).Offset, nil
			}
		}
		return 0, 0, fmt.Errorf("no import block")
	}
	ss, se, err := block(step)
	if err != nil {
		return nil, err
	}
	hs, he, err := block(src)
	if err != nil {
		return nil, err
	}
	return apply(src, []edit{{start: hs, end: he, text: string(step[ss:se])}}), nil
}

// importName is the name a file uses for an import.
func importName(imp *ast.ImportSpec) string {
	if imp.Name != nil {
		return imp.Name.Name
	}
	path, _ := strconv.Unquote(imp.Path.Value)
	return path[strings.LastIndex(path, "/")+1:]
}
