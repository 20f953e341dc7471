// Package kit holds the tests of the kit's conventions, which
// CONTRIBUTING.md explains: the numbered steps grow append-only, so that
// `diff -u` between neighbours shows only the added primitive, they keep
// one skeleton, and their code stays within 80 columns; files are LF
// everywhere. It has no code of its own.
package kit

import (
	"bytes"
	"encoding/json"
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
			t.Errorf("%s removes or changes a line of %s (steps are append-only, "+
				"see CONTRIBUTING.md; make the change in both):\n  %s",
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
				t.Errorf("%s:%d is %d columns wide (80 at most, a tab counting as 4; "+
					"see CONTRIBUTING.md)", file, i+1, width)
			}
		}
	}
}

// TestSkeleton checks the order CONTRIBUTING.md fixes for every step:
// the header, main, run, child, then the rest.
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
				t.Errorf("%s: %q missing or out of order (the skeleton: see CONTRIBUTING.md)",
					file, strings.TrimSpace(marker))
			}
			last = i
		}
		if !strings.Contains(s, `const step = "`+dir+`"`) {
			t.Errorf("%s: the step constant is not %q", file, dir)
		}
	}
}

// TestLineEndings: every file git keeps is LF, and .gitattributes keeps
// it so on Windows, where git would otherwise check text out as CRLF and
// gofmt would fail every .go file. See gitattributes(5).
func TestLineEndings(t *testing.T) {
	attrs, err := os.ReadFile("../../.gitattributes")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(attrs), "* text=auto eol=lf\n") &&
		!strings.Contains(string(attrs), "\n* text=auto eol=lf\n") {
		t.Errorf(".gitattributes has no line \"* text=auto eol=lf\" (see CONTRIBUTING.md)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed: apt-get install git")
	}
	// git ls-files --eol: "i/crlf" is a file stored with CRLF in the index.
	cmd := exec.Command("git", "ls-files", "--eol")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files --eol: %v", err)
	}
	n := 0
	for _, line := range strings.Split(string(out), "\n") {
		n++
		if strings.HasPrefix(line, "i/crlf") || strings.HasPrefix(line, "i/mixed") {
			t.Errorf("a file with CR LF line endings: %s", line)
		}
	}
	if n < 50 {
		t.Errorf("git ls-files listed %d files: not the repository?", n)
	}
}

// TestMkimageArchitecture: scripts/mkimage.sh labels the image with the
// machine's architecture, in OCI's (Go's) names, so an arm64 class VM
// makes an arm64 image. A uname(1) of the test's own plays each machine.
func TestMkimageArchitecture(t *testing.T) {
	for _, tool := range []string{"python3", "tar", "gzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed by scripts/mkimage.sh", tool)
		}
	}
	for machine, want := range map[string]string{"x86_64": "amd64", "aarch64": "arm64"} {
		dir := t.TempDir()
		rootfs, layout := filepath.Join(dir, "rootfs"), filepath.Join(dir, "layout")
		if err := os.MkdirAll(filepath.Join(rootfs, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		fake := filepath.Join(dir, "uname")
		if err := os.WriteFile(fake, []byte("#!/bin/sh\necho "+machine+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("../../scripts/mkimage.sh", rootfs, layout)
		cmd.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("mkimage.sh: %v\n%s", err, out)
		}
		if got := imageArch(t, layout); got != "linux/"+want {
			t.Errorf("on %s, mkimage.sh made a %s image, want linux/%s", machine, got, want)
		}
	}
}

// imageArch reads an OCI layout's only image's os/architecture.
func imageArch(t *testing.T, layout string) string {
	blob := func(digest string) []byte {
		b, err := os.ReadFile(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:")))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	type desc struct{ Digest string }
	var index struct{ Manifests []desc }
	var manifest struct{ Config desc }
	var config struct{ Architecture, OS string }
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("index.json: %v %s", err, b)
	}
	if err := json.Unmarshal(blob(index.Manifests[0].Digest), &manifest); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(blob(manifest.Config.Digest), &config); err != nil {
		t.Fatal(err)
	}
	return config.OS + "/" + config.Architecture
}
