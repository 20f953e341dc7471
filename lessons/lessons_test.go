// Package lessons holds the chapters of gocell, one Markdown file per step,
// and this test, which keeps what the chapters quote in step with the code.
//
// A chapter may quote code and diffs, but only checked ones. The marker on
// the line right before a fenced block says where it comes from:
//
//	<!-- from: 03-mount/main.go -->      before a ```go block: its lines
//	                                     are a contiguous run of lines of
//	                                     that file, verbatim, tabs and all.
//	<!-- diff: 02-pid/main.go 03-mount/main.go -->
//	                                     before a ```diff block: each hunk
//	                                     in it (from one @@ line to the
//	                                     next) is one of the hunks of the
//	                                     real `diff -u` of the two files.
//	<!-- answer: 03-1 -->                before a ```diff block of
//	                                     answers.md: an exercise's answer,
//	                                     a change to a step; the tests of
//	                                     internal/learn apply it and run
//	                                     the exercise's check on it.
//
// Paths are relative to the repository root. Every ```go and ```diff block
// must carry its marker; other languages (sh, console, text, mermaid) are
// free. The test also checks that every relative link in lessons/*.md and
// the top-level README.md leads to a file that exists, and that each
// chapter (NN-name.md) has exactly the required ## headings, in order.
//
// The test needs the diff command (GNU diffutils) and fails without it.
// It needs no root and runs with `go test ./lessons/`.
package lessons

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/markdown"
	"github.com/gocell/gocell/internal/transcript"
)

// repoRoot is where the paths in markers start, seen from this package's
// directory, where go test runs.
const repoRoot = ".."

// headings are the ## headings of every chapter, in this order.
var headings = []string{
	"What this step adds, and why",
	"The kernel interface",
	"The diff against the previous step",
	"Try it",
	"Look from the host",
	"Exercises",
	"Pitfalls",
}

// chapterName matches a chapter's file name: 03-mount.md.
var chapterName = regexp.MustCompile(`^[0-9][0-9]-[a-z0-9-]+\.md$`)

// The two markers. Paths contain no spaces.
var (
	fromMarker = regexp.MustCompile(`^<!--\s*from:\s*(\S+)\s*-->$`)
	diffMarker = regexp.MustCompile(`^<!--\s*diff:\s*(\S+)\s+(\S+)\s*-->$`)
	anyMarker  = regexp.MustCompile(`^<!--\s*(from|diff):`)
	// answerMarker marks an answer of answers.md (see internal/learn).
	answerMarker = regexp.MustCompile(`^<!--\s*answer:\s*\d\d-\d\s*-->$`)
)

// checkFrom checks that body is a contiguous run of lines of file. When it
// is not, the error names the first line of the block that differs from
// the closest run in the file (the one that matches the most lines).
func checkFrom(body, file []string) error {
	if len(body) == 0 {
		return errors.New("the block is empty")
	}
	bestStart, bestLen := -1, -1
	for start := range file {
		n := 0
		for n < len(body) && start+n < len(file) && file[start+n] == body[n] {
			n++
		}
		if n == len(body) {
			return nil
		}
		if n > bestLen && n > 0 {
			bestStart, bestLen = start, n
		}
	}
	if bestStart < 0 {
		return fmt.Errorf("line 1 of the block is not in the file: %q", body[0])
	}
	got := body[bestLen]
	if bestStart+bestLen >= len(file) {
		return fmt.Errorf("line %d of the block, %q, runs past the end of the file (the first %d lines match the file from its line %d)",
			bestLen+1, got, bestLen, bestStart+1)
	}
	return fmt.Errorf("line %d of the block differs: the block has %q, the file (line %d) has %q",
		bestLen+1, got, bestStart+bestLen+1, file[bestStart+bestLen])
}

// hunk is one hunk of a unified diff: its @@ line and the lines after it.
type hunk []string

// splitHunks cuts a unified diff into hunks. What comes before the first
// @@ line (the --- and +++ header) is returned separately.
func splitHunks(lines []string) (header []string, hunks []hunk) {
	for _, l := range lines {
		if strings.HasPrefix(l, "@@") {
			hunks = append(hunks, hunk{l})
			continue
		}
		if len(hunks) == 0 {
			header = append(header, l)
			continue
		}
		hunks[len(hunks)-1] = append(hunks[len(hunks)-1], l)
	}
	return header, hunks
}

// checkDiff checks that every hunk of body is, verbatim, one of the hunks
// of the real diff. The block may start with "--- OLD" and "+++ NEW"
// lines naming the two files (without diff's timestamps, which change).
func checkDiff(body []string, oldPath, newPath string, real []hunk) error {
	header, hunks := splitHunks(body)
	for _, h := range header {
		if h != "--- "+oldPath && h != "+++ "+newPath && strings.TrimSpace(h) != "" {
			return fmt.Errorf("before the first @@ the block may only have %q and %q, not %q",
				"--- "+oldPath, "+++ "+newPath, h)
		}
	}
	if len(hunks) == 0 {
		return errors.New("the block has no hunk (no line starting with @@)")
	}
	for n, h := range hunks {
		if err := matchHunk(h, real); err != nil {
			return fmt.Errorf("hunk %d (%s): %w", n+1, h[0], err)
		}
	}
	return nil
}

// matchHunk finds the real hunk with the same @@ line and compares them.
func matchHunk(h hunk, real []hunk) error {
	var heads []string
	for _, r := range real {
		heads = append(heads, r[0])
		if r[0] != h[0] {
			continue
		}
		for i := 1; i < len(h) || i < len(r); i++ {
			switch {
			case i >= len(h):
				return fmt.Errorf("the block stops at line %d of the hunk; the real hunk goes on with %q", i+1, r[i])
			case i >= len(r):
				return fmt.Errorf("line %d of the hunk, %q, is not in the real hunk, which ends before it", i+1, h[i])
			case h[i] != r[i]:
				return fmt.Errorf("line %d of the hunk differs: the block has %q, the real diff has %q", i+1, h[i], r[i])
			}
		}
		return nil
	}
	return fmt.Errorf("the real diff has no such hunk; its hunks start with: %s", strings.Join(heads, ", "))
}

// realDiff runs `diff -u OLD NEW` in the repository root and returns its
// hunks. diff exits with 1 when the files differ, which is no error here.
func realDiff(root, oldPath, newPath string) ([]hunk, error) {
	bin, err := exec.LookPath("diff")
	if err != nil {
		return nil, fmt.Errorf("the diff command (GNU diffutils) is needed to check diff blocks: %w", err)
	}
	for _, p := range []string{oldPath, newPath} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			return nil, err
		}
	}
	cmd := exec.Command(bin, "-u", oldPath, newPath)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var exitErr *exec.ExitError
	if err != nil && !(errors.As(err, &exitErr) && exitErr.ExitCode() == 1) {
		return nil, fmt.Errorf("diff -u %s %s: %v %s", oldPath, newPath, err, stderr.String())
	}
	_, hunks := splitHunks(markdown.SplitLines(string(out)))
	return hunks, nil
}

// checkBlocks checks every marker and every go or diff block of one
// Markdown text. Each problem is one error that names the block.
func checkBlocks(name, text, root string) []error {
	var errs []error
	report := func(b markdown.Block, format string, args ...any) {
		where := fmt.Sprintf("%s: block at line %d", name, b.Line)
		if b.Marker != "" && anyMarker.MatchString(b.Marker) {
			where += " " + b.Marker
		}
		errs = append(errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
	}
	blocks, err := markdown.ParseBlocks(text)
	if err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	// A marker must stand right before a block, or it checks nothing.
	starts := map[int]bool{}
	for _, b := range blocks {
		starts[b.Line] = true
	}
	inBlock := markdown.BlockLines(blocks)
	for i, l := range markdown.SplitLines(text) {
		if anyMarker.MatchString(strings.TrimSpace(l)) && !starts[i+2] && !inBlock[i+1] {
			errs = append(errs, fmt.Errorf("%s: line %d: marker %s is not right before a fenced block", name, i+1, strings.TrimSpace(l)))
		}
	}
	files := map[string][]string{}
	for _, b := range blocks {
		from := fromMarker.FindStringSubmatch(b.Marker)
		diff := diffMarker.FindStringSubmatch(b.Marker)
		switch {
		case b.Lang == "go" && from == nil:
			report(b, "a go block needs <!-- from: FILE --> on the line right before it")
		case b.Lang == "diff" && answerMarker.MatchString(b.Marker):
			// Checked by internal/learn: applied, and its check run.
		case b.Lang == "diff" && diff == nil:
			report(b, "a diff block needs <!-- diff: OLD NEW --> on the line right before it")
		case from != nil && b.Lang != "go":
			report(b, "a from: marker must stand before a ```go block, not ```%s", b.Lang)
		case diff != nil && b.Lang != "diff":
			report(b, "a diff: marker must stand before a ```diff block, not ```%s", b.Lang)
		case from != nil:
			lines, ok := files[from[1]]
			if !ok {
				data, err := os.ReadFile(filepath.Join(root, from[1]))
				if err != nil {
					report(b, "%v", err)
					continue
				}
				lines = markdown.SplitLines(string(data))
				files[from[1]] = lines
			}
			if err := checkFrom(b.Body, lines); err != nil {
				report(b, "%v", err)
			}
		case diff != nil:
			real, err := realDiff(root, diff[1], diff[2])
			if err != nil {
				report(b, "%v", err)
				continue
			}
			if err := checkDiff(b.Body, diff[1], diff[2], real); err != nil {
				report(b, "%v", err)
			}
		case b.Marker != "" && anyMarker.MatchString(b.Marker):
			report(b, "malformed marker %q", b.Marker)
		}
	}
	return errs
}

// markdownFiles lists lessons/*.md.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no Markdown files in lessons/")
	}
	return files
}

// TestQuotedCode checks every go and diff block of every lesson against
// the real files.
func TestQuotedCode(t *testing.T) {
	for _, name := range markdownFiles(t) {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, err := range checkBlocks(name, string(data), repoRoot) {
			t.Error(err)
		}
	}
}

// TestChapterHeadings checks the headings of every chapter, and that each
// chapter belongs to a step that exists.
func TestChapterHeadings(t *testing.T) {
	n := 0
	for _, name := range markdownFiles(t) {
		if !chapterName.MatchString(name) {
			continue
		}
		n++
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := markdown.CheckHeadings(name, string(data), headings); err != nil {
			t.Error(err)
		}
		step := strings.TrimSuffix(name, ".md")
		if strings.HasSuffix(step, "-final") {
			// Chapter 09 is about final/, the runtime.
			step = "final"
		}
		if strings.HasSuffix(step, "-oci") {
			// Chapter 10 is about gocell-runtime, the OCI runtime.
			step = "final/cmd/gocell-runtime"
		}
		if _, err := os.Stat(filepath.Join(repoRoot, step, "main.go")); err != nil {
			t.Errorf("%s: no step %s/main.go for this chapter: %v", name, step, err)
		}
	}
	if n == 0 {
		t.Error("no chapters (NN-name.md) in lessons/")
	}
}

// TestLinks checks the relative links of the lessons and of the top-level
// README and CONTRIBUTING.
func TestLinks(t *testing.T) {
	files := append(markdownFiles(t), filepath.Join(repoRoot, "README.md"),
		filepath.Join(repoRoot, "CONTRIBUTING.md"))
	for _, f := range files {
		for _, err := range markdown.CheckLinks(f) {
			t.Error(err)
		}
	}
}

// TestToolsInstalled: every command the chapters and the README show at a
// host prompt ("$ ") is on this machine, so scripts/provision.sh installs
// what the lessons use (CI provisions with it before the tests run).
// Only the first command of a line is looked at, and the one in an
// assignment's $(...); shell keywords and builtins, variables, and the
// gocell and gocell-runtime the chapters build are left out.
func TestToolsInstalled(t *testing.T) {
	skip := map[string]bool{"for": true, "while": true, "if": true, "cd": true,
		"export": true, "alias": true, "read": true, "set": true, "exit": true,
		"wait": true, "source": true, ".": true, "unset": true, "trap": true,
		"type": true, "umask": true, "gocell": true, "gocell-runtime": true}
	files := append(markdownFiles(t), filepath.Join(repoRoot, "README.md"))
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		console := false
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "```") {
				console = !console && strings.TrimPrefix(line, "```") == "console"
				continue
			}
			if !console || !strings.HasPrefix(line, "$ ") {
				continue
			}
			word := firstCommand(strings.Fields(line[2:]))
			if word == "" || skip[word] || strings.HasPrefix(word, "$") {
				continue
			}
			if strings.Contains(word, "/") {
				if _, err := os.Stat(filepath.Join(repoRoot, word)); err != nil && !filepath.IsAbs(word) {
					t.Errorf("%s:%d: %s is not in the repository", f, i+1, word)
				}
				continue
			}
			if _, err := exec.LookPath(word); err != nil {
				t.Errorf("%s:%d: %s is not installed here; scripts/provision.sh should install it "+
					"(or run sudo scripts/provision.sh)", f, i+1, word)
			}
		}
	}
}

// TestTranscripts: every console block of a chapter is a recording that
// make transcripts made (internal/transcript), or is marked as output
// from another machine on purpose (<!-- recorded: WHERE -->); each block
// is its recording, byte for byte, so a command edited by hand, or an
// output typed or tidied, fails here until make transcripts is run; and
// no recording shows a path of the machine the kit was written on.
func TestTranscripts(t *testing.T) {
	chapters, err := filepath.Glob("[0-9][0-9]-*.md")
	if err != nil || len(chapters) == 0 {
		t.Fatalf("no chapters: %v", err)
	}
	// The workshop guide's classroom registry is recorded too.
	for _, f := range append(chapters, "workshop.md") {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		blocks, unmarked, err := transcript.Parse(data)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		for _, u := range unmarked {
			t.Errorf("%s:%d: a console block that no recording made: mark it "+
				"<!-- transcript: NAME --> and run make transcripts, or, for output from "+
				"another machine on purpose, <!-- recorded: WHERE -->", f, u.Line)
		}
		if len(blocks) == 0 {
			continue
		}
		rec, err := transcript.Load(repoRoot, f)
		if err != nil {
			t.Errorf("%s: no recording (%v): run make transcripts", f, err)
			continue
		}
		if !strings.Contains(rec.Machine, "cgroup v2") {
			t.Errorf("%s: recorded on %q, not on cgroup v2 as the class VM", f, rec.Machine)
		}
		recorded := map[string]string{}
		for _, b := range rec.Blocks {
			recorded[b.Name] = b.Text
		}
		for _, b := range blocks {
			want, ok := recorded[b.Name]
			if !ok {
				t.Errorf("%s:%d: %s has no recording: run make transcripts CHAPTERS=%s", f, b.Line, b.Name, f)
				continue
			}
			delete(recorded, b.Name)
			if b.Text != want {
				got, exp := strings.Split(b.Text, "\n"), strings.Split(want, "\n")
				i := 0
				for i < len(got) && i < len(exp) && got[i] == exp[i] {
					i++
				}
				line := func(l []string) string {
					if i < len(l) {
						return l[i]
					}
					return "(the end)"
				}
				t.Errorf("%s:%d: %s is not what was recorded (run make transcripts CHAPTERS=%s);"+
					" line %d is\n  %s\nrecorded:\n  %s", f, b.Line, b.Name, f, i+1, line(got), line(exp))
			}
			for _, bad := range []string{"/work/main", "/process_api/"} {
				if strings.Contains(b.Text, bad) {
					t.Errorf("%s:%d: %s shows %s, a path of the authors' machine", f, b.Line, b.Name, bad)
				}
			}
		}
		for name := range recorded {
			t.Errorf("%s: the recording of %s is no block's any more: run make transcripts", f, name)
		}
	}
}

// TestMakeLineNumbers: the sessions quoted in the READMEs show make's
// "make: *** [Makefile:N: check-01] Error 1"; N must still be the line of
// that target's recipe, or the quote is no longer what make prints.
func TestMakeLineNumbers(t *testing.T) {
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(mk), "\n")
	re := regexp.MustCompile(`make: \*\*\* \[Makefile:(\d+): (start|check|solution)-[0-9-]+\] Error`)
	n := 0
	for _, f := range []string{filepath.Join(repoRoot, "README.md"), "README.md"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range re.FindAllStringSubmatch(string(data), -1) {
			n++
			var line int
			fmt.Sscan(m[1], &line)
			want := "$(LEARN) " + m[2] + " $*"
			if line < 1 || line > len(lines) || !strings.Contains(lines[line-1], want) {
				t.Errorf("%s quotes %q, but line %s of the Makefile is not the recipe %q: "+
					"run the session again and quote it", f, m[0], m[1], want)
			}
		}
	}
	if n == 0 {
		t.Error("no quoted make error in the READMEs: is this test still needed?")
	}
}

// TestDiagramsHaveText: every Mermaid diagram is followed by its plain
// text rendering, for a learner reading the chapter in the VM's terminal,
// where Mermaid is only code.
func TestDiagramsHaveText(t *testing.T) {
	for _, f := range markdownFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i < len(lines); i++ {
			if lines[i] != "```mermaid" {
				continue
			}
			start := i
			for i++; i < len(lines) && lines[i] != "```"; i++ {
			}
			rest := strings.Join(lines[i+1:min(i+5, len(lines))], "\n")
			if !strings.Contains(rest, "<details><summary>The diagram as text</summary>") ||
				!strings.Contains(rest, "```text") {
				t.Errorf("%s:%d: a Mermaid diagram without its text rendering after it "+
					"(<details><summary>The diagram as text</summary>, then a text markdown.Block)", f, start+1)
			}
		}
	}
}

// firstCommand returns the command a shell line runs first: after sudo,
// env and VAR=value words; for VAR=$(cmd ...), cmd.
func firstCommand(words []string) string {
	for _, w := range words {
		switch {
		case w == "sudo" || w == "env" || w == "time" || w == "!" || strings.HasPrefix(w, "-"):
		case strings.Contains(w, "=$("):
			return strings.SplitN(w, "=$(", 2)[1]
		case strings.Contains(w, "=") && !strings.HasPrefix(w, "="):
		default:
			return w
		}
	}
	return ""
}

// The checks above are only worth something if they fail when text and
// code drift apart. The tests below feed them small fixtures, good and
// bad, and look at what they say.

// fixtureGo is a tiny source file; note the tabs.
var fixtureGo = markdown.SplitLines("package main\n\nfunc main() {\n\tsetHostname()\n\tshowPid()\n\texecCommand(args)\n}\n")

func TestCheckFrom(t *testing.T) {
	ok := [][]string{
		{"\tsetHostname()", "\tshowPid()"},
		{"func main() {"},
		fixtureGo,
	}
	for _, body := range ok {
		if err := checkFrom(body, fixtureGo); err != nil {
			t.Errorf("checkFrom(%q) = %v, want nil", body, err)
		}
	}
	bad := []struct {
		body []string
		want string
	}{
		// Spaces instead of the tab: the first line already differs.
		{[]string{"    setHostname()", "\tshowPid()"}, `line 1 of the block is not in the file: "    setHostname()"`},
		// A renamed function: line 2 differs from the file's line 5.
		{[]string{"\tsetHostname()", "\tshowPID()"}, `line 2 of the block differs: the block has "\tshowPID()", the file (line 5) has "\tshowPid()"`},
		// Lines that are all in the file, but not contiguous.
		{[]string{"\tsetHostname()", "\texecCommand(args)"}, `line 2 of the block differs`},
		// Past the end of the file.
		{[]string{"}", "// more"}, `runs past the end of the file`},
		{nil, "empty"},
	}
	for _, c := range bad {
		err := checkFrom(c.body, fixtureGo)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkFrom(%q) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

// writeFixture writes files (name: content) into a new temporary
// directory and returns it.
func writeFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// twoSteps is a pair of neighbouring "steps" whose real diff has two
// hunks.
var twoSteps = map[string]string{
	"01/main.go": "package main\n\n// step 01\nconst step = \"01\"\n\nfunc child() {\n\ta()\n\tb()\n\tc()\n\td()\n\te()\n\tf()\n\tg()\n}\n",
	"02/main.go": "package main\n\n// step 02\nconst step = \"02\"\n\nfunc child() {\n\ta()\n\tb()\n\tc()\n\td()\n\te()\n\tf()\n\tg()\n\th()\n}\n",
}

func TestCheckDiff(t *testing.T) {
	root := writeFixture(t, twoSteps)
	real, err := realDiff(root, "01/main.go", "02/main.go")
	if err != nil {
		t.Fatal(err)
	}
	if len(real) != 2 {
		t.Fatalf("the fixture's diff has %d hunks, want 2: %q", len(real), real)
	}
	second := strings.Join(real[1], "\n")
	good := []string{
		// The whole diff, with a header without timestamps.
		"--- 01/main.go\n+++ 02/main.go\n" + strings.Join(real[0], "\n") + "\n" + second,
		// A selection: only the second hunk.
		second,
	}
	for _, body := range good {
		if err := checkDiff(markdown.SplitLines(body), "01/main.go", "02/main.go", real); err != nil {
			t.Errorf("checkDiff(%q) = %v, want nil", body, err)
		}
	}
	bad := []struct {
		body, want string
	}{
		// An added line that the real diff does not have.
		{strings.Replace(second, "+\th()", "+\th()\n+\ti()", 1), `line 6 of the hunk differs: the block has "+\ti()", the real diff has " }"`},
		// A line after the end of the real hunk.
		{second + "\n+\tx()", `line 7 of the hunk, "+\tx()", is not in the real hunk`},
		// A hunk cut short.
		{strings.TrimSuffix(second, "\n }"), `the block stops at line 6 of the hunk; the real hunk goes on with " }"`},
		// A changed line: the message names it and the real one.
		{strings.Replace(second, "+\th()", "+\tH()", 1), `the block has "+\tH()", the real diff has "+\th()"`},
		// A context line whose leading space an editor trimmed.
		{strings.Replace(second, " \tg()", "\tg()", 1), `the block has "\tg()", the real diff has " \tg()"`},
		// A hunk header that is not in the real diff.
		{strings.Replace(second, "@@ -", "@@ -9", 1), "the real diff has no such hunk"},
		// A header with timestamps, or of other files.
		{"--- 00/main.go\n" + second, "before the first @@"},
		{"", "no hunk"},
	}
	for _, c := range bad {
		err := checkDiff(markdown.SplitLines(c.body), "01/main.go", "02/main.go", real)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkDiff(%q) = %v, want an error containing %q", c.body, err, c.want)
		}
	}
}

func TestCheckBlocks(t *testing.T) {
	root := writeFixture(t, twoSteps)
	real, err := realDiff(root, "01/main.go", "02/main.go")
	if err != nil {
		t.Fatal(err)
	}
	hunk := strings.Join(real[1], "\n")
	good := "# A chapter\n\n<!-- from: 02/main.go -->\n```go\nfunc child() {\n\ta()\n```\n\n" +
		"<!-- diff: 01/main.go 02/main.go -->\n```diff\n" + hunk + "\n```\n\n```sh\nfree text\n```\n"
	if errs := checkBlocks("good.md", good, root); len(errs) != 0 {
		t.Errorf("checkBlocks(good) = %v, want no errors", errs)
	}
	bad := []struct {
		text, want string
	}{
		{"```go\nfunc child() {\n```\n", "bad.md: block at line 1: a go block needs <!-- from: FILE -->"},
		{"```diff\n" + hunk + "\n```\n", "a diff block needs <!-- diff: OLD NEW -->"},
		{"<!-- from: 02/main.go -->\n\n```go\nfunc child() {\n```\n", "not right before a fenced block"},
		{"<!-- from: 02/main.go -->\n```sh\nls\n```\n", "a from: marker must stand before a ```go block"},
		{"text\n<!-- from: 02/main.go -->\n```go\nfunc child() {\n\tz()\n```\n",
			`bad.md: block at line 3 <!-- from: 02/main.go -->: line 2 of the block differs: the block has "\tz()", the file (line 7) has "\ta()"`},
		{"<!-- from: 03/main.go -->\n```go\nx\n```\n", "no such file"},
		{"<!-- diff: 01/main.go 02/main.go -->\n```diff\n" + strings.Replace(hunk, "h()", "i()", 1) + "\n```\n", "hunk 1 (@@"},
	}
	for _, c := range bad {
		errs := checkBlocks("bad.md", c.text, root)
		if len(errs) == 0 || !strings.Contains(fmt.Sprint(errs), c.want) {
			t.Errorf("checkBlocks(%q) = %v, want an error containing %q", c.text, errs, c.want)
		}
	}
}

func TestCheckHeadings(t *testing.T) {
	var b strings.Builder
	b.WriteString("# 99-demo\n\n")
	for _, h := range headings {
		b.WriteString("## " + h + "\n\ntext\n\n### a subsection is fine\n\n")
	}
	good := b.String()
	if err := markdown.CheckHeadings("99-demo.md", good+"```sh\n## a comment in a markdown.Block is fine\n```\n", headings); err != nil {
		t.Errorf("good chapter: %v", err)
	}
	bad := []struct {
		text, want string
	}{
		{strings.Replace(good, "## Try it", "## Try It", 1), `heading 4 is "## Try It", want "## Try it"`},
		{strings.Replace(good, "## Exercises", "### Exercises", 1), `heading 6 is "## Pitfalls", want "## Exercises"`},
		{strings.Replace(good, "## Pitfalls", "Pitfalls", 1), "has only 6 ## headings"},
		{good + "## Further reading\n", `an extra ## heading "## Further reading"`},
	}
	for _, c := range bad {
		err := markdown.CheckHeadings("99-demo.md", c.text, headings)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("checkHeadings: got %v, want an error containing %q", err, c.want)
		}
	}
}
