// Package kit holds the tests of the kit's conventions (design.md): the
// numbered steps grow append-only, so that `diff -u` between neighbours
// shows only the added primitive, and their code stays within 80
// columns. It has no code of its own.
package kit

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"
)

// steps lists the numbered step directories in order.
func steps(t *testing.T) []string {
	dirs, err := filepath.Glob("../../[0-9][0-9]-*/main.go")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(dirs)
	if len(dirs) < 2 {
		t.Fatalf("found %d steps, want the whole staircase", len(dirs))
	}
	return dirs
}

// TestAppendOnly checks that each step only adds lines to the one before
// it. The exceptions are the header comment, which says what the step
// adds, and the line naming the step.
func TestAppendOnly(t *testing.T) {
	if _, err := exec.LookPath("diff"); err != nil {
		t.Fatal("diff (diffutils) is needed: apt-get install diffutils")
	}
	files := steps(t)
	for i := 1; i < len(files); i++ {
		prev, next := files[i-1], files[i]
		out, err := exec.Command("diff", "-u", prev, next).Output()
		var exit *exec.ExitError
		if err != nil && !(errors.As(err, &exit) && exit.ExitCode() == 1) {
			t.Fatalf("diff %s %s: %v", prev, next, err)
		}
		header := headerLines(t, prev)
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "-") || strings.HasPrefix(line, "---") {
				continue
			}
			removed := line[1:]
			if header[removed] || strings.HasPrefix(removed, "const step = ") {
				continue
			}
			t.Errorf("%s removes or changes a line of %s (steps are append-only):\n  %s",
				filepath.Base(filepath.Dir(next)), filepath.Base(filepath.Dir(prev)), removed)
		}
	}
}

// headerLines returns the lines of a step's header comment, before
// "package main".
func headerLines(t *testing.T, file string) map[string]bool {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	head, _, ok := bytes.Cut(data, []byte("\npackage main\n"))
	if !ok {
		t.Fatalf("%s: no package main", file)
	}
	lines := map[string]bool{}
	for _, l := range strings.Split(string(head), "\n") {
		lines[l] = true
	}
	return lines
}

// TestLineLength keeps the steps readable beside a chapter, on a code
// host and in a terminal: at most 80 columns, a tab counting as 4.
func TestLineLength(t *testing.T) {
	for _, file := range steps(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(data), "\n") {
			width := utf8.RuneCountInString(strings.ReplaceAll(line, "\t", "    "))
			if width > 80 {
				t.Errorf("%s:%d is %d columns wide", file, i+1, width)
			}
		}
	}
}

// TestSkeleton checks the order design.md fixes for every step: the
// header, main, run, child, then the rest.
func TestSkeleton(t *testing.T) {
	for _, file := range steps(t) {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		s := string(data)
		dir := filepath.Base(filepath.Dir(file))
		if !strings.HasPrefix(s, "// Step "+dir+": ") {
			t.Errorf("%s does not start with \"// Step %s: \"", file, dir)
		}
		last := -1
		for _, marker := range []string{"\npackage main\n", "\nimport (", "\nvar namespaces = ", "\nfunc main() {", "\nfunc run(", "\nfunc child("} {
			i := strings.Index(s, marker)
			if i < 0 || i < last {
				t.Errorf("%s: %q missing or out of order", file, strings.TrimSpace(marker))
			}
			last = i
		}
		if !strings.Contains(s, `const step = "`+dir+`"`) {
			t.Errorf("%s: the step constant is not %q", file, dir)
		}
	}
}
