// Package zh holds the Chinese pages of the kit (中文): one for every
// English page of lessons/, with the same file name, and README.zh-CN.md
// for the top-level README. This test keeps each pair in step.
//
// What a Chinese page must keep from its English page, byte for byte:
// every fenced code block (the code, the diffs and the recorded outputs
// are the same program's, so they are never translated), the comment
// marker right before each block (<!-- from: -->, <!-- transcript: -->...),
// and every other <!-- comment -->. Its headings come in the same number,
// at the same levels, in the same order; a chapter's seven ## headings are
// those of zhHeadings. Prose, headings and tables are translated.
//
// Each Chinese page names the English text it was translated from, by the
// Git blob of the English file (what `git hash-object FILE` prints):
//
//	<!-- translated-from: lessons/03-mount.md 5f1c... -->
//
// An English page edited after its translation no longer has that blob,
// and the test fails, naming both files and the git diff that shows what
// changed (`git hash-object -w` stores the English as it is now, if it is
// not committed yet, so that git diff can name it). Whoever brings the
// Chinese up to date writes the new blob.
//
// Text only Chinese readers need (mirrors reachable from mainland China)
// sits between <!-- zh-only --> and <!-- /zh-only --> lines, which the
// comparison skips. glossary.md is Chinese only.
//
// The test needs no root and no tools: it runs on the host and in the VM.
package zh

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/gocell/gocell/internal/markdown"
)

// repoRoot is the repository's root, seen from this directory.
const repoRoot = "../.."

// zhHeadings are the ## headings of every Chinese chapter, in order: those
// of the English chapters (lessons/lessons_test.go), translated.
var zhHeadings = []string{
	"这一步加了什么，为什么", // What this step adds, and why
	"内核接口",        // The kernel interface
	"与上一步的差异",     // The diff against the previous step
	"动手试试",        // Try it
	"从宿主机看",       // Look from the host
	"练习",          // Exercises
	"常见陷阱",        // Pitfalls
}

// chineseOnly are the pages with no English counterpart.
var chineseOnly = map[string]bool{"glossary.md": true}

var (
	chapterName = regexp.MustCompile(`^[0-9][0-9]-[a-z0-9-]+\.md$`)
	stamp       = regexp.MustCompile(`^<!-- translated-from: (\S+) ([0-9a-f]{40}) -->$`)
	comment     = regexp.MustCompile(`^\s*<!--.*-->\s*$`)
)

const (
	zhOnlyOpen  = "<!-- zh-only -->"
	zhOnlyClose = "<!-- /zh-only -->"
)

// pair is an English page and its Chinese page, as paths from the
// repository root.
type pair struct{ en, zh string }

// pairs lists every page that must have a Chinese twin: lessons/*.md and
// the top-level README.
func pairs(t *testing.T, root string) []pair {
	t.Helper()
	en, err := filepath.Glob(filepath.Join(root, "lessons", "*.md"))
	if err != nil || len(en) == 0 {
		t.Fatalf("no English pages in lessons/: %v", err)
	}
	ps := []pair{{"README.md", "README.zh-CN.md"}}
	for _, f := range en {
		name := filepath.Base(f)
		ps = append(ps, pair{"lessons/" + name, "lessons/zh/" + name})
	}
	return ps
}

// gitBlob is the name Git gives a file's content: the SHA-1 of
// "blob LEN\0" and the bytes (git-hash-object(1)). Git's object store
// keeps it, so `git diff OLD NEW` of two blobs shows what changed.
func gitBlob(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return fmt.Sprintf("%x", h.Sum(nil))
}

// stripZhOnly blanks the zh-only regions, markers included, keeping the
// line count so that line numbers in errors stay true.
func stripZhOnly(name, text string) (string, error) {
	lines := strings.Split(text, "\n")
	in := 0
	for i, l := range lines {
		switch strings.TrimSpace(l) {
		case zhOnlyOpen:
			if in != 0 {
				return "", fmt.Errorf("%s:%d: %s inside another (opened at line %d)", name, i+1, zhOnlyOpen, in)
			}
			in = i + 1
			lines[i] = ""
		case zhOnlyClose:
			if in == 0 {
				return "", fmt.Errorf("%s:%d: %s without %s", name, i+1, zhOnlyClose, zhOnlyOpen)
			}
			in = 0
			lines[i] = ""
		default:
			if in != 0 {
				lines[i] = ""
			}
		}
	}
	if in != 0 {
		return "", fmt.Errorf("%s:%d: %s is never closed", name, in, zhOnlyOpen)
	}
	return strings.Join(lines, "\n"), nil
}

// comments lists the <!-- --> lines outside code blocks, but for the
// pages' own heads (the translated-from stamp).
func comments(text string) []markdown.Heading {
	blocks, _ := markdown.ParseBlocks(text)
	in := markdown.BlockLines(blocks)
	var out []markdown.Heading
	for i, l := range markdown.SplitLines(text) {
		if in[i+1] || !comment.MatchString(l) || stamp.MatchString(strings.TrimSpace(l)) {
			continue
		}
		out = append(out, markdown.Heading{Line: i + 1, Text: strings.TrimSpace(l)})
	}
	return out
}

// checkPair compares one English page with its Chinese page; en and zh are
// paths from root.
func checkPair(root string, p pair) []error {
	enData, err := os.ReadFile(filepath.Join(root, p.en))
	if err != nil {
		return []error{err}
	}
	zhData, err := os.ReadFile(filepath.Join(root, p.zh))
	if errors.Is(err, os.ErrNotExist) {
		return []error{fmt.Errorf("%s has no Chinese page %s: translate it (see lessons/zh/zh_test.go)", p.en, p.zh)}
	} else if err != nil {
		return []error{err}
	}
	var errs []error
	fail := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }

	// The heads: each page links to the other, on its third line.
	enLines, zhLines := markdown.SplitLines(string(enData)), markdown.SplitLines(string(zhData))
	toZh, _ := filepath.Rel(filepath.Dir(p.en), p.zh)
	toEn, _ := filepath.Rel(filepath.Dir(p.zh), p.en)
	if want := "English · [中文](" + filepath.ToSlash(toZh) + ")"; len(enLines) < 3 || enLines[2] != want {
		fail("%s:3: want the link to the Chinese page, %q", p.en, want)
	}
	if want := "[English](" + filepath.ToSlash(toEn) + ") · 中文"; len(zhLines) < 3 || zhLines[2] != want {
		fail("%s:3: want the link to the English page, %q", p.zh, want)
	}

	// The stamp: translated from the English page as it is now.
	var from, blob string
	for _, l := range zhLines {
		if m := stamp.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			from, blob = m[1], m[2]
			break
		}
	}
	now := gitBlob(enData)
	switch {
	case from == "":
		fail("%s: no <!-- translated-from: %s BLOB --> line (BLOB: git hash-object %s)", p.zh, p.en, p.en)
	case from != p.en:
		fail("%s: translated from %s, but its English page is %s", p.zh, from, p.en)
	case blob != now:
		fail("%s changed since %s was translated from it: see what changed with "+
			"`git diff %s $(git hash-object -w %s)`, bring the Chinese up to date, "+
			"then write %s in its translated-from line", p.en, p.zh, blob[:12], p.en, now)
	}

	zhText, err := stripZhOnly(p.zh, string(zhData))
	if err != nil {
		return append(errs, err)
	}
	enText := string(enData)

	// The code blocks, and the markers right before them.
	enBlocks, err := markdown.ParseBlocks(enText)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", p.en, err))
	}
	zhBlocks, err := markdown.ParseBlocks(zhText)
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", p.zh, err))
	}
	zhAll := markdown.SplitLines(zhText)
	for i, e := range enBlocks {
		if i >= len(zhBlocks) {
			fail("%s has %d code blocks, %s has %d: the first missing one is %s:%d",
				p.zh, len(zhBlocks), p.en, len(enBlocks), p.en, e.Line)
			break
		}
		z := zhBlocks[i]
		if strings.HasPrefix(e.Marker, "<!--") && z.Marker != e.Marker {
			fail("%s:%d: the line before code block %d is %q; %s:%d has %q", p.zh, z.Line-1, i+1, z.Marker, p.en, e.Line-1, e.Marker)
		}
		enBody := enLines[e.Line-1 : e.Line+len(e.Body)+1]
		zhBody := zhAll[z.Line-1 : z.Line+len(z.Body)+1]
		if d := firstDiff(enBody, zhBody); d >= 0 {
			fail("%s:%d: code block %d differs from %s:%d, the English, at its line %d: %s (copy the English block; code and outputs are never translated)",
				p.zh, z.Line, i+1, p.en, e.Line, d+1, showDiff(enBody, zhBody, d))
		}
	}
	if len(zhBlocks) > len(enBlocks) {
		fail("%s has %d code blocks, %s only %d: the first extra one is %s:%d (Chinese-only text goes between %s and %s)",
			p.zh, len(zhBlocks), p.en, len(enBlocks), p.zh, zhBlocks[len(enBlocks)].Line, zhOnlyOpen, zhOnlyClose)
	}

	// The other comments (markers of diagrams and the like).
	enC, zhC := comments(enText), comments(zhText)
	for i := 0; i < len(enC) || i < len(zhC); i++ {
		switch {
		case i >= len(zhC):
			fail("%s: the comment %s of %s:%d is missing", p.zh, enC[i].Text, p.en, enC[i].Line)
		case i >= len(enC):
			fail("%s:%d: the comment %s is not in %s", p.zh, zhC[i].Line, zhC[i].Text, p.en)
		case enC[i].Text != zhC[i].Text:
			fail("%s:%d: comment %d is %s; %s:%d has %s", p.zh, zhC[i].Line, i+1, zhC[i].Text, p.en, enC[i].Line, enC[i].Text)
		}
		if len(errs) > 20 {
			break
		}
	}

	// The headings: the same levels in the same order.
	enH, zhH := markdown.Headings(enText), markdown.Headings(zhText)
	for i := 0; i < len(enH) || i < len(zhH); i++ {
		switch {
		case i >= len(zhH):
			fail("%s: the heading %q of %s:%d has no Chinese heading", p.zh, enH[i].Text, p.en, enH[i].Line)
		case i >= len(enH):
			fail("%s:%d: the heading %q has no English heading in %s", p.zh, zhH[i].Line, zhH[i].Text, p.en)
		case enH[i].Level != zhH[i].Level:
			fail("%s:%d: heading %d (%q) is at level %d; in %s:%d (%q) it is at level %d",
				p.zh, zhH[i].Line, i+1, zhH[i].Text, zhH[i].Level, p.en, enH[i].Line, enH[i].Text, enH[i].Level)
		default:
			continue
		}
		break // one misplaced heading shifts all the rest: say it once
	}
	if chapterName.MatchString(filepath.Base(p.zh)) {
		if err := markdown.CheckHeadings(p.zh, zhText, zhHeadings); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// firstDiff is the index of the first line where a and b differ, or -1.
func firstDiff(a, b []string) int {
	for i := 0; i < len(a) || i < len(b); i++ {
		if i >= len(a) || i >= len(b) || a[i] != b[i] {
			return i
		}
	}
	return -1
}

func showDiff(en, zh []string, i int) string {
	line := func(l []string) string {
		if i < len(l) {
			return fmt.Sprintf("%q", l[i])
		}
		return "(the end)"
	}
	return fmt.Sprintf("English %s, Chinese %s", line(en), line(zh))
}

// TestParity checks every English page against its Chinese page.
func TestParity(t *testing.T) {
	for _, p := range pairs(t, repoRoot) {
		for _, err := range checkPair(repoRoot, p) {
			t.Error(err)
		}
	}
}

// TestNoOrphans: every Chinese page has an English one (or is Chinese
// only on purpose), so a renamed chapter does not leave its old
// translation behind.
func TestNoOrphans(t *testing.T) {
	zh, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zh {
		if chineseOnly[f] {
			continue
		}
		if _, err := os.Stat(filepath.Join("..", f)); err != nil {
			t.Errorf("lessons/zh/%s has no English page lessons/%s: remove it, or rename it as the English one was", f, f)
		}
	}
}

// TestLinks checks the relative links of the Chinese pages, anchors
// included.
func TestLinks(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Chinese pages in lessons/zh: %v", err)
	}
	files = append(files, filepath.Join(repoRoot, "README.zh-CN.md"))
	for _, f := range files {
		for _, err := range markdown.CheckLinks(f) {
			t.Error(err)
		}
	}
}

func TestGitBlob(t *testing.T) {
	// printf 'hello\n' | git hash-object --stdin
	if got, want := gitBlob([]byte("hello\n")), "ce013625030ba8dba906f756967f9e9ca394464a"; got != want {
		t.Errorf("gitBlob(hello) = %s, want %s", got, want)
	}
}

// TestCheckPair makes a small pair of pages and breaks the Chinese one, or
// changes the English one, in each way the test must catch.
func TestCheckPair(t *testing.T) {
	en := "# 01-demo\n\nEnglish · [中文](zh/01-demo.md)\n\n## What this step adds, and why\n\nText.\n\n" +
		"<!-- from: 01-uts/main.go -->\n```go\nx := 1\n```\n\n### Detail\n\n<!-- transcript: 01-try -->\n```console\n$ echo hi\nhi\n```\n" +
		"\n## The kernel interface\n\n## The diff against the previous step\n\n## Try it\n\n## Look from the host\n\n## Exercises\n\n## Pitfalls\n"
	zhFor := func(en string) string {
		return "# 01-演示\n\n[English](../01-demo.md) · 中文\n\n<!-- translated-from: lessons/01-demo.md " +
			gitBlob([]byte(en)) + " -->\n\n## 这一步加了什么，为什么\n\n文字。\n\n" +
			"<!-- from: 01-uts/main.go -->\n```go\nx := 1\n```\n\n### 细节\n\n<!-- zh-only -->\n只有中文。\n\n```sh\nexport GOPROXY=x\n```\n<!-- /zh-only -->\n\n" +
			"<!-- transcript: 01-try -->\n```console\n$ echo hi\nhi\n```\n" +
			"\n## 内核接口\n\n## 与上一步的差异\n\n## 动手试试\n\n## 从宿主机看\n\n## 练习\n\n## 常见陷阱\n"
	}
	zh := zhFor(en)
	check := func(en, zh string) string {
		dir := t.TempDir()
		for name, text := range map[string]string{"lessons/01-demo.md": en, "lessons/zh/01-demo.md": zh} {
			os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var s []string
		for _, err := range checkPair(dir, pair{"lessons/01-demo.md", "lessons/zh/01-demo.md"}) {
			s = append(s, err.Error())
		}
		return strings.Join(s, "\n")
	}
	if got := check(en, zh); got != "" {
		t.Fatalf("a good pair: %s", got)
	}
	bad := []struct{ what, en, zh, want string }{
		{"English prose changed", strings.Replace(en, "Text.", "New text.", 1), "",
			"lessons/01-demo.md changed since lessons/zh/01-demo.md was translated from it: see what changed with `git diff"},
		{"output translated", en, strings.Replace(zh, "hi\n```", "你好\n```", 1),
			`lessons/zh/01-demo.md:27: code block 2 differs from lessons/01-demo.md:17, the English, at its line 3: English "hi", Chinese "你好"`},
		{"marker lost", en, strings.Replace(zh, "<!-- transcript: 01-try -->\n", "", 1), `the line before code block 2 is ""`},
		{"block dropped", en, strings.Replace(zh, "```go\nx := 1\n```\n", "", 1), "has 1 code blocks"},
		{"extra block outside zh-only", en, strings.Replace(zh, "## 常见陷阱\n", "## 常见陷阱\n\n```sh\nls\n```\n", 1), "the first extra one is lessons/zh/01-demo.md:44"},
		{"heading level", en, strings.Replace(zh, "### 细节", "## 细节", 1), "heading 3 (\"细节\") is at level 2"},
		{"chapter heading", en, strings.Replace(zh, "## 这一步加了什么，为什么", "## 这一步", 1), `heading 1 is "## 这一步"`},
		{"no link back", en, strings.Replace(zh, "[English](../01-demo.md) · 中文", "中文", 1), "lessons/zh/01-demo.md:3: want the link to the English page"},
		{"no link to Chinese", strings.Replace(en, "English · [中文](zh/01-demo.md)", "English", 1), "",
			"lessons/01-demo.md:3: want the link to the Chinese page"},
		{"zh-only unclosed", en, strings.Replace(zh, "<!-- /zh-only -->\n", "", 1), "<!-- zh-only --> is never closed"},
		{"no stamp", en, strings.Replace(zh, "<!-- translated-from:", "<!-- from-nowhere:", 1), "no <!-- translated-from: lessons/01-demo.md BLOB --> line"},
	}
	for _, c := range bad {
		z := c.zh
		if z == "" {
			z = zh
		}
		if got := check(c.en, z); !strings.Contains(got, c.want) {
			t.Errorf("%s: got\n%s\nwant an error containing %q", c.what, got, c.want)
		}
	}
}
