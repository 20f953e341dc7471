package learn

import (
	"fmt"
	"regexp"
	"strings"
)

// The answers to the exercises live in lessons/answers.md, for teachers
// to hand out after class: for each checkable exercise, the change to the
// step as a unified diff, under a marker
//
//	<!-- answer: 03-1 -->
//	```diff
//	--- 03-mount/main.go
//	+++ 03-mount/main.go
//	@@ …
//	```
//
// The kit's tests apply each diff to its step and run the exercise's
// checker on the result, so an answer that stops working fails the kit.

// answerBlock finds a marked diff in answers.md.
var answerBlock = regexp.MustCompile("(?s)<!-- answer: (\\d\\d-\\d) -->\\s*```diff\\n(.*?)```")

// Answers returns the diffs of answers.md by exercise ("03-1").
func Answers(md string) map[string]string {
	out := map[string]string{}
	for _, m := range answerBlock.FindAllStringSubmatch(md, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// Apply applies a unified diff to src. Each hunk's old lines (context and
// removed) must appear in src exactly once; they are replaced by its new
// lines (context and added). Line numbers are not needed.
func Apply(src, diff string) (string, error) {
	var hunks [][2][]string
	var cur *[2][]string
	for _, line := range strings.Split(diff, "\n") {
		switch {
		case strings.HasPrefix(line, "---"), strings.HasPrefix(line, "+++"):
		case strings.HasPrefix(line, "@@"):
			hunks = append(hunks, [2][]string{})
			cur = &hunks[len(hunks)-1]
		case cur == nil:
		case strings.HasPrefix(line, " ") || line == "":
			text := strings.TrimPrefix(line, " ")
			cur[0] = append(cur[0], text)
			cur[1] = append(cur[1], text)
		case strings.HasPrefix(line, "-"):
			cur[0] = append(cur[0], line[1:])
		case strings.HasPrefix(line, "+"):
			cur[1] = append(cur[1], line[1:])
		}
	}
	for i, h := range hunks {
		// A blank line at the end of the diff is not part of a hunk.
		old := strings.Join(trimEnd(h[0]), "\n") + "\n"
		new := strings.Join(trimEnd(h[1]), "\n") + "\n"
		if n := strings.Count(src, old); n != 1 {
			return "", fmt.Errorf("hunk %d: its old lines appear %d times, not once", i+1, n)
		}
		src = strings.Replace(src, old, new, 1)
	}
	return src, nil
}

// trimEnd drops the empty lines at the end of a hunk's lines, which the
// split of the diff's last newline adds.
func trimEnd(lines []string) []string {
	for len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	return lines
}
