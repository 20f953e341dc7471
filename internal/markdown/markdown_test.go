package markdown

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

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

func TestParseBlocks(t *testing.T) {
	text := strings.Join([]string{
		"<!-- from: a.go -->",
		"```go",
		"x := 1",
		"```",
		"````markdown",
		"<!-- from: b.go -->",
		"```go",
		"not a block of its own",
		"```",
		"````",
		"~~~sh",
		"echo hi",
		"~~~",
	}, "\n")
	blocks, err := ParseBlocks(text)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) != 3 {
		t.Fatalf("got %d blocks, want 3: %+v", len(blocks), blocks)
	}
	want := []Block{
		{Line: 2, Lang: "go", Marker: "<!-- from: a.go -->", Body: []string{"x := 1"}},
		{Line: 5, Lang: "markdown", Marker: "```", Body: []string{"<!-- from: b.go -->", "```go", "not a block of its own", "```"}},
		{Line: 11, Lang: "sh", Marker: "````", Body: []string{"echo hi"}},
	}
	for i := range want {
		if fmt.Sprint(blocks[i]) != fmt.Sprint(want[i]) {
			t.Errorf("block %d = %+v, want %+v", i, blocks[i], want[i])
		}
	}
	if _, err := ParseBlocks("```go\nx\n"); err == nil {
		t.Error("an unclosed block must be an error")
	}
}

func TestCheckLinks(t *testing.T) {
	dir := writeFixture(t, map[string]string{
		"lessons/a.md": "# A\n\n## Try it\n\n[b](b.md#the-kernel-interface) [code](../01/main.go) " +
			"[dir](../01/) [web](https://example.com/x) [self](#try-it) `[not](a-link.md)`\n\n" +
			"```sh\n[also not](in-a-block.md)\n```\n\n[ref]: b.md\n",
		"lessons/b.md": "# B\n\n## The kernel interface\n",
		"01/main.go":   "package main\n",
		"lessons/bad.md": "[gone](../02/main.go) [anchor](b.md#no-such-heading) [abs](/etc/passwd)\n" +
			"[ref]: c.md\n",
	})
	if errs := CheckLinks(filepath.Join(dir, "lessons/a.md")); len(errs) != 0 {
		t.Errorf("good links: %v", errs)
	}
	errs := fmt.Sprint(CheckLinks(filepath.Join(dir, "lessons/bad.md")))
	for _, want := range []string{
		`bad.md:1: link "../02/main.go": no such file`,
		`link "b.md#no-such-heading"`,
		`link "/etc/passwd": use a relative path`,
		`bad.md:2: link "c.md": no such file`,
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("bad links: %s\nwant an error containing %q", errs, want)
		}
	}
}

func TestAnchors(t *testing.T) {
	got := strings.Join(Anchors("# 03-mount: a root of its own\n## What this step adds, and why\n## Try it\n## Try it\n```\n# not a heading\n```\n"), " ")
	want := "03-mount-a-root-of-its-own what-this-step-adds-and-why try-it try-it-1"
	if got != want {
		t.Errorf("anchors = %q, want %q", got, want)
	}
}
