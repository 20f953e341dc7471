// Package markdown reads the few things of a Markdown file that the kit's
// tests check: its fenced code blocks, its headings and their anchors, and
// its relative links. The lessons' tests (lessons/) and the Chinese
// chapters' parity test (lessons/zh/) share it.
package markdown

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"
)

// Block is one fenced code block of a Markdown file.
type Block struct {
	// Line is the line number (from 1) of the opening fence.
	Line int
	// Lang is the first word of the info string, lower case: "go".
	Lang string
	// Marker is the line right before the opening fence.
	Marker string
	// Body is the lines between the fences.
	Body []string
}

// fenceOpen matches an opening fence: up to three spaces, three or more
// backticks or tildes, and an optional info string.
var fenceOpen = regexp.MustCompile("^ {0,3}(`{3,}|~{3,})\\s*([^`\\s]*)")

// ParseBlocks finds the fenced code blocks of a Markdown text. A fence is
// closed by a line of at least as many of the same characters, so a
// ````markdown block may show a ```go block as an example without that
// example being taken for a real one.
func ParseBlocks(text string) ([]Block, error) {
	lines := SplitLines(text)
	var blocks []Block
	for i := 0; i < len(lines); i++ {
		m := fenceOpen.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		fence := m[1]
		b := Block{Line: i + 1, Lang: strings.ToLower(m[2])}
		if i > 0 {
			b.Marker = strings.TrimSpace(lines[i-1])
		}
		closed := false
		for i++; i < len(lines); i++ {
			t := strings.TrimSpace(lines[i])
			if strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == "" {
				closed = true
				break
			}
			b.Body = append(b.Body, lines[i])
		}
		if !closed {
			return blocks, fmt.Errorf("the block at line %d is never closed", b.Line)
		}
		blocks = append(blocks, b)
	}
	return blocks, nil
}

// SplitLines splits a text into lines without their line endings.
func SplitLines(text string) []string {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	text = strings.TrimSuffix(text, "\n")
	if text == "" {
		return nil
	}
	return strings.Split(text, "\n")
}

// BlockLines is the set of line numbers inside fenced blocks, fences
// included, so that links and headings in code are not taken for real.
func BlockLines(blocks []Block) map[int]bool {
	in := map[int]bool{}
	for _, b := range blocks {
		for l := b.Line; l <= b.Line+len(b.Body)+1; l++ {
			in[l] = true
		}
	}
	return in
}

// link matches an inline Markdown link or image, [text](target), and a
// reference definition, [label]: target.
var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refLink    = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	inlineCode = regexp.MustCompile("`+[^`]*`+")
	scheme     = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9+.-]*:`)
	heading    = regexp.MustCompile(`^#{1,6} +(.+?) *#* *$`)
)

// CheckLinks checks that every relative link of the Markdown file at path
// points to a file or directory that exists and, for a link into a
// Markdown file with a #fragment, to one of its headings.
func CheckLinks(path string) []error {
	data, err := os.ReadFile(path)
	if err != nil {
		return []error{err}
	}
	text := string(data)
	blocks, _ := ParseBlocks(text)
	in := BlockLines(blocks)
	var errs []error
	for i, l := range SplitLines(text) {
		if in[i+1] {
			continue
		}
		l = inlineCode.ReplaceAllString(l, "")
		var targets []string
		for _, m := range inlineLink.FindAllStringSubmatch(l, -1) {
			targets = append(targets, m[1])
		}
		if m := refLink.FindStringSubmatch(l); m != nil {
			targets = append(targets, m[1])
		}
		for _, t := range targets {
			if err := checkTarget(path, t); err != nil {
				errs = append(errs, fmt.Errorf("%s:%d: link %q: %w", path, i+1, t, err))
			}
		}
	}
	return errs
}

func checkTarget(from, target string) error {
	if scheme.MatchString(target) || strings.HasPrefix(target, "//") {
		return nil // a URL: not ours to check, and no network in tests
	}
	file, frag, _ := strings.Cut(target, "#")
	file, _, _ = strings.Cut(file, "?")
	dest := from
	if file != "" {
		if strings.HasPrefix(file, "/") {
			return errors.New("use a relative path: absolute ones break on code hosts")
		}
		dest = filepath.Join(filepath.Dir(from), filepath.FromSlash(file))
		if _, err := os.Stat(dest); err != nil {
			return fmt.Errorf("no such file: %s", dest)
		}
	}
	if frag == "" || !strings.HasSuffix(dest, ".md") {
		return nil
	}
	data, err := os.ReadFile(dest)
	if err != nil {
		return err
	}
	for _, a := range Anchors(string(data)) {
		if a == frag {
			return nil
		}
	}
	return fmt.Errorf("%s has no heading with the anchor #%s", dest, frag)
}

// Heading is one ATX heading (# to ######) outside code blocks.
type Heading struct {
	// Line is its line number, from 1.
	Line int
	// Level is the number of #s: 2 for "## Try it".
	Level int
	// Text is the title, without the #s and the spaces around it.
	Text string
}

// Headings lists the headings of a Markdown text, in order.
func Headings(text string) []Heading {
	blocks, _ := ParseBlocks(text)
	in := BlockLines(blocks)
	var out []Heading
	for i, l := range SplitLines(text) {
		m := heading.FindStringSubmatch(l)
		if in[i+1] || m == nil {
			continue
		}
		out = append(out, Heading{Line: i + 1, Level: strings.IndexByte(l, ' '), Text: strings.TrimSpace(m[1])})
	}
	return out
}

// Anchors lists the anchors a code host makes for a Markdown file's
// headings, as GitHub does: lower case; letters, digits and marks of any
// script kept, with - and _; spaces to hyphens; other punctuation dropped,
// the full-width kind of Chinese prose too (，：（）); and -1, -2... for
// repeats.
func Anchors(text string) []string {
	seen := map[string]int{}
	var out []string
	for _, h := range Headings(text) {
		var b strings.Builder
		for _, r := range strings.ToLower(h.Text) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r):
				b.WriteRune(r)
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out = append(out, fmt.Sprintf("%s-%d", a, n))
		} else {
			out = append(out, a)
		}
		seen[a]++
	}
	return out
}

// CheckHeadings checks that a chapter has exactly the want ## headings, in
// order; ### and deeper are free.
func CheckHeadings(name, text string, want []string) error {
	var got []string
	for _, h := range Headings(text) {
		if h.Level == 2 {
			got = append(got, h.Text)
		}
	}
	for i, w := range want {
		if i >= len(got) {
			return fmt.Errorf("%s: heading %d should be %q, but the chapter has only %d ## headings", name, i+1, "## "+w, len(got))
		}
		if got[i] != w {
			return fmt.Errorf("%s: heading %d is %q, want %q (the headings, in order: %s)", name, i+1, "## "+got[i], "## "+w, strings.Join(want, "; "))
		}
	}
	if len(got) > len(want) {
		return fmt.Errorf("%s: an extra ## heading %q after %q; use ### inside a section", name, "## "+got[len(want)], "## "+want[len(want)-1])
	}
	return nil
}
