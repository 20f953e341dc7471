// Package transcript records the chapters' console blocks on a machine
// and writes what it printed back into them, so that no output in
// lessons/ was typed by hand.
//
// A recorded block is a console block with a marker on the line before
// it:
//
//	<!-- transcript: 07-look term=2 set="P=pgrep -nx sleep" -->
//	```console
//	$ P=12737
//	$ cat /proc/$P/cgroup
//	0::/gocell-lessons/07-cgroups-12731
//	```
//
// The block's command lines are the script: each line that begins with
// the terminal's prompt ("$ " for the user's shell, or the block's
// prompt= for a shell inside a container) is typed into a terminal, and
// everything else in the block is replaced by what the terminal printed.
// The marker's words change how the block is played:
//
//	term=N       the terminal (default 1); terminals keep their shell,
//	             variables and running commands from block to block, so
//	             a container started in terminal 1 can be looked at from
//	             terminal 2, as the chapters say ("in a second terminal")
//	prompt=P     the prompt of the shell a command of this block starts
//	             (or that is running), such as "/ # "
//	until=RE     do not wait for the last command to end: stop when the
//	             output matches RE (a container left running)
//	ready="CMD"  likewise, but stop when CMD (run as root) succeeds, for
//	             a command that says nothing while it runs
//	wait         a block without commands: the rest of the output of the
//	             command left running in this terminal, until it ends
//	set="V=CMD"  before typing a line "V=...", run CMD (hidden, as root)
//	             and type V=its output, as a reader who copies a pid
//	             from the narration would
//	hidden="CMD" run CMD as root before the block, out of sight (to
//	             prepare something a chapter describes in prose)
//	after="CMD"  run CMD as root after the block, out of sight (to undo
//	             what hidden did)
//
// Chapters may also hold console blocks marked <!-- recorded: WHERE -->,
// output from another machine on purpose (cgroup v1, say); every other
// console block of a chapter must be a transcript.
package transcript

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// OuterPrompt is the prompt of the user's shell in every terminal.
const OuterPrompt = "$ "

// Block is one recorded console block of a chapter.
type Block struct {
	Name string `json:"name"`
	// Directives are the marker's words (term, prompt, until, wait, set,
	// hidden), as written.
	Directives map[string][]string `json:"directives,omitempty"`
	// Text is the block's content, without the fences.
	Text string `json:"text"`
	// Line is where the block's content starts in the chapter (1-based).
	Line int `json:"-"`
	// lines is how many lines the content has in the chapter.
	lines int
}

// Term returns the block's terminal.
func (b Block) Term() string {
	if t := b.Directives["term"]; len(t) > 0 {
		return t[0]
	}
	return "1"
}

// Prompt returns the block's inner prompt, or "".
func (b Block) Prompt() string {
	if p := b.Directives["prompt"]; len(p) > 0 {
		return p[0]
	}
	return ""
}

// Command is one line the block types.
type Command struct {
	Prompt string // the prompt the line begins with
	Text   string // what is typed
}

// Commands are the lines of the block that are typed into the terminal.
func (b Block) Commands() []Command {
	var out []Command
	inner := b.Prompt()
	for _, line := range strings.Split(b.Text, "\n") {
		switch {
		case inner != "" && strings.HasPrefix(line, inner):
			out = append(out, Command{inner, strings.TrimPrefix(line, inner)})
		case strings.HasPrefix(line, OuterPrompt):
			out = append(out, Command{OuterPrompt, strings.TrimPrefix(line, OuterPrompt)})
		}
	}
	return out
}

// Chapter is a chapter's recorded blocks, and where it was recorded.
type Chapter struct {
	File    string  `json:"file"`
	Machine string  `json:"machine"`
	Blocks  []Block `json:"blocks"`
}

var (
	markerRE   = regexp.MustCompile(`^<!-- transcript: (\S+)(.*?)\s*-->$`)
	recordedRE = regexp.MustCompile(`^<!-- recorded: .+ -->$`)
)

// Unmarked is a console block without a transcript or recorded marker.
type Unmarked struct{ Line int }

// Parse returns the transcript blocks of a chapter, and the console
// blocks that carry no marker at all.
func Parse(data []byte) ([]Block, []Unmarked, error) {
	lines := strings.Split(string(data), "\n")
	var blocks []Block
	var unmarked []Unmarked
	names := map[string]bool{}
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "```") || strings.TrimSpace(lines[i]) == "```" {
			continue
		}
		lang := strings.TrimPrefix(lines[i], "```")
		start := i + 1
		end := start
		for end < len(lines) && lines[end] != "```" {
			end++
		}
		if end == len(lines) {
			return nil, nil, fmt.Errorf("line %d: a code block that never ends", i+1)
		}
		prev := ""
		if i > 0 {
			prev = lines[i-1]
		}
		i = end
		if lang != "console" {
			continue
		}
		m := markerRE.FindStringSubmatch(prev)
		if m == nil {
			if !recordedRE.MatchString(prev) {
				unmarked = append(unmarked, Unmarked{start})
			}
			continue
		}
		if names[m[1]] {
			return nil, nil, fmt.Errorf("line %d: a second transcript named %s", start-1, m[1])
		}
		names[m[1]] = true
		dirs, err := directives(m[2])
		if err != nil {
			return nil, nil, fmt.Errorf("line %d: %s: %w", start-1, m[1], err)
		}
		blocks = append(blocks, Block{Name: m[1], Directives: dirs,
			Text: strings.Join(lines[start:end], "\n"), Line: start + 1, lines: end - start})
	}
	return blocks, unmarked, nil
}

// known are the directives a marker may hold, and whether they take a
// value.
var known = map[string]bool{"term": true, "prompt": true, "until": true,
	"ready": true, "wait": false, "set": true, "hidden": true, "after": true}

// directives splits a marker's words: name, or name=value where value
// may be in double quotes (with \" and \\ inside).
func directives(s string) (map[string][]string, error) {
	out := map[string][]string{}
	r := bufio.NewReader(strings.NewReader(s))
	for {
		c, err := skipSpaces(r)
		if err != nil {
			return out, nil
		}
		var name strings.Builder
		for err == nil && c != '=' && c != ' ' {
			name.WriteRune(c)
			c, _, err = r.ReadRune()
		}
		takes, ok := known[name.String()]
		if !ok {
			return nil, fmt.Errorf("unknown directive %q", name.String())
		}
		if c != '=' {
			if takes {
				return nil, fmt.Errorf("%s needs a value", name.String())
			}
			out[name.String()] = append(out[name.String()], "")
			continue
		}
		if !takes {
			return nil, fmt.Errorf("%s takes no value", name.String())
		}
		v, err := value(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name.String(), err)
		}
		out[name.String()] = append(out[name.String()], v)
	}
}

func skipSpaces(r *bufio.Reader) (rune, error) {
	for {
		c, _, err := r.ReadRune()
		if err != nil || c != ' ' {
			return c, err
		}
	}
}

func value(r *bufio.Reader) (string, error) {
	c, _, err := r.ReadRune()
	if err != nil {
		return "", nil
	}
	var v strings.Builder
	if c != '"' {
		for err == nil && c != ' ' {
			v.WriteRune(c)
			c, _, err = r.ReadRune()
		}
		return v.String(), nil
	}
	for {
		c, _, err = r.ReadRune()
		if err != nil {
			return "", fmt.Errorf("a quote that never ends")
		}
		switch c {
		case '"':
			return v.String(), nil
		case '\\':
			c, _, err = r.ReadRune()
			if err != nil {
				return "", fmt.Errorf("a quote that never ends")
			}
		}
		v.WriteRune(c)
	}
}

// Splice returns the chapter with each recorded block's content replaced
// by its recording; a block without one is an error.
func Splice(data []byte, rec Chapter) ([]byte, error) {
	byName := map[string]string{}
	for _, b := range rec.Blocks {
		byName[b.Name] = b.Text
	}
	blocks, _, err := Parse(data)
	if err != nil {
		return nil, err
	}
	lines := strings.Split(string(data), "\n")
	var out []string
	next := 0
	for _, b := range blocks {
		text, ok := byName[b.Name]
		if !ok {
			return nil, fmt.Errorf("%s: no recording of %s", rec.File, b.Name)
		}
		start := b.Line - 1
		out = append(out, lines[next:start]...)
		if text != "" {
			out = append(out, strings.Split(text, "\n")...)
		}
		next = start + b.lines
	}
	out = append(out, lines[next:]...)
	return []byte(strings.Join(out, "\n")), nil
}

// Dir is where the recordings are kept, relative to the repository.
const Dir = "lessons/transcripts"

// Load reads the recording of chapter file (such as "03-mount.md").
func Load(root, file string) (Chapter, error) {
	var c Chapter
	data, err := os.ReadFile(filepath.Join(root, Dir, strings.TrimSuffix(file, ".md")+".json"))
	if err != nil {
		return c, err
	}
	err = json.Unmarshal(data, &c)
	return c, err
}

// Save writes the recording of a chapter.
func Save(root string, c Chapter) error {
	data, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return err
	}
	path := filepath.Join(root, Dir, strings.TrimSuffix(c.File, ".md")+".json")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

// Chapters lists the chapters (lessons/NN-name.md) that hold transcript
// markers.
func Chapters(root string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(root, "lessons", "[0-9][0-9]-*.md"))
	if err != nil {
		return nil, err
	}
	// The workshop guide shows the classroom registry at work.
	files = append(files, filepath.Join(root, "lessons", "workshop.md"))
	var out []string
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		if bytes.Contains(data, []byte("<!-- transcript: ")) {
			out = append(out, filepath.Base(f))
		}
	}
	sort.Strings(out)
	return out, nil
}
