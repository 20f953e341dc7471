package transcript

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
)

// A terminal is what a learner types into: a pseudo-terminal (pty(7))
// running bash as the learner's user, so that what the steps do with a
// terminal (the foreground process group, a shell's prompt and line
// editing) happens as it does for them. Its prompt is "$ ", preceded by
// an invisible mark (ASCII RS, which PROMPT_COMMAND prints) that tells
// the recorder the previous command has ended.
type terminal struct {
	cmd *exec.Cmd
	pty *os.File

	mu   sync.Mutex
	cond *sync.Cond
	buf  []byte // everything the terminal printed
	pos  int    // where the next block's output starts in buf
	eof  bool
}

// mark is printed before each prompt of the user's shell.
const mark = "\x1e"

// Options say how to start terminals.
type Options struct {
	Dir     string // the working directory (the repository)
	UID     uint32 // the learner's user
	GID     uint32
	Env     []string // the learner's environment
	Timeout time.Duration
}

func startTerminal(o Options) (*terminal, error) {
	cmd := exec.Command("bash", "--noediting", "--norc", "--noprofile", "-i")
	cmd.Dir = o.Dir
	cmd.Env = append(append([]string{}, o.Env...),
		"PS1="+OuterPrompt, "PS2=> ", `PROMPT_COMMAND=printf '\036'`)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: o.UID, Gid: o.GID},
	}
	// A terminal as wide as a laptop's usually is: programs that fit
	// their output to it (ls, ps, lsns) print what a learner sees.
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Rows: 50, Cols: 120})
	if err != nil {
		return nil, fmt.Errorf("start bash on a pty: %w", err)
	}
	t := &terminal{cmd: cmd, pty: f}
	t.cond = sync.NewCond(&t.mu)
	go t.read()
	return t, nil
}

func (t *terminal) read() {
	b := make([]byte, 4096)
	for {
		n, err := t.pty.Read(b)
		t.mu.Lock()
		t.buf = append(t.buf, b[:n]...)
		if err != nil {
			t.eof = true
		}
		t.cond.Broadcast()
		t.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// waitFor waits until find, given the raw output from t.pos on, returns
// a position (relative to t.pos) or the timeout passes.
func (t *terminal) waitFor(what string, timeout time.Duration, find func([]byte) int) (int, error) {
	deadline := time.Now().Add(timeout)
	timer := time.AfterFunc(timeout, func() {
		t.mu.Lock()
		t.cond.Broadcast()
		t.mu.Unlock()
	})
	defer timer.Stop()
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if i := find(t.buf[t.pos:]); i >= 0 {
			return t.pos + i, nil
		}
		if t.eof || time.Now().After(deadline) {
			tail := t.buf[t.pos:]
			if len(tail) > 2000 {
				tail = tail[len(tail)-2000:]
			}
			why := "timed out"
			if t.eof {
				why = "the terminal closed"
			}
			return 0, fmt.Errorf("waiting for %s: %s; the terminal shows:\n%s", what, why, clean(tail))
		}
		t.cond.Wait()
	}
}

// promptAt finds prompt p at the start of a line (or of the output) in
// raw output: the position where the prompt starts. For the user's shell
// that is the mark.
func promptAt(p string, atStart bool) func([]byte) int {
	if p == OuterPrompt {
		return func(b []byte) int { return bytes.Index(b, []byte(mark+OuterPrompt)) }
	}
	return func(b []byte) int {
		if atStart && bytes.HasPrefix(b, []byte(p)) {
			return 0
		}
		if i := bytes.Index(b, []byte("\n"+p)); i >= 0 {
			return i + 1
		}
		return -1
	}
}

func (t *terminal) slice(from, to int) []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf[from:to]...)
}

func (t *terminal) typeLine(s string) error {
	_, err := io.WriteString(t.pty, s+"\n")
	return err
}

// close ends the terminal and everything still running in it: every
// process of its session, which pty.Start made for bash (bash puts each
// job in a process group of its own, so killing bash's group is not
// enough). Processes that made sessions of their own (gocell's
// monitors) are the chapter's to stop.
func (t *terminal) close() {
	if t.cmd.Process != nil {
		sid := t.cmd.Process.Pid
		for _, pid := range sessionPids(sid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
		t.cmd.Wait()
	}
	t.pty.Close()
}

// sessionPids lists the processes of session sid, from /proc/PID/stat
// (the session is its 6th field; see proc_pid_stat(5)).
func sessionPids(sid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// The command name, in parentheses, may hold spaces: count
		// fields after its closing parenthesis.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(data[i+1:]))
		if len(f) > 3 && f[3] == strconv.Itoa(sid) {
			out = append(out, pid)
		}
	}
	return out
}

var csiRE = regexp.MustCompile("\x1b\\[[0-9;?]*[A-Za-z]|\x1b\\][^\x07]*\x07")

// cursorUpRE is "cursor up N lines" (CSI N A), with which a program
// redraws lines it wrote: gocell's progress bars, followed by "erase to
// the end of the screen" (CSI J).
var cursorUpRE = regexp.MustCompile("^\x1b\\[([0-9]*)A$")

// clean turns raw terminal output into what a reader sees: no carriage
// returns, no escape sequences (busybox's shell asks for the cursor's
// position after each prompt), no marks; and lines a program went back
// over and redrew only once, as the screen shows them in the end.
func clean(b []byte) string {
	raw := strings.ReplaceAll(string(b), "\r", "")
	var out string
	last := 0
	for _, m := range csiRE.FindAllStringIndex(raw, -1) {
		out += raw[last:m[0]]
		last = m[1]
		up := cursorUpRE.FindStringSubmatch(raw[m[0]:m[1]])
		if up == nil {
			continue
		}
		n, _ := strconv.Atoi(up[1])
		if up[1] == "" {
			n = 1
		}
		// Back to the start of the current line, then n lines up.
		cut := strings.LastIndex(out, "\n") + 1
		for ; n > 0 && cut > 0; n-- {
			cut = strings.LastIndex(out[:cut-1], "\n") + 1
		}
		out = out[:cut]
	}
	out += raw[last:]
	return strings.ReplaceAll(out, mark, "")
}

// Recorder plays the blocks of chapters.
type Recorder struct {
	Opts Options
	// Root runs a hidden command as root and returns its output.
	Root func(cmd string) (string, error)
}

// step is one command of a chapter, with the prompt that must follow it.
type step struct {
	block int
	cmd   Command
}

// Record plays a chapter's blocks, in order, in fresh terminals, and
// returns their recordings.
func (r *Recorder) Record(file string, blocks []Block) ([]Block, error) {
	terms := map[string]*terminal{}
	defer func() {
		for _, t := range terms {
			t.close()
		}
	}()
	// What each terminal types, in order, to know which prompt follows
	// a command: the next command's in the same terminal.
	var byTerm = map[string][]step{}
	for i, b := range blocks {
		for _, c := range b.Commands() {
			byTerm[b.Term()] = append(byTerm[b.Term()], step{i, c})
		}
	}
	next := map[string]int{} // index into byTerm of each terminal's next command
	var out []Block
	for i, b := range blocks {
		t, ok := terms[b.Term()]
		if !ok {
			var err error
			if t, err = startTerminal(r.Opts); err != nil {
				return nil, err
			}
			terms[b.Term()] = t
		}
		for _, h := range b.Directives["hidden"] {
			if _, err := r.Root(h); err != nil {
				return nil, fmt.Errorf("%s: %s: hidden %q: %w", file, b.Name, h, err)
			}
		}
		text, err := r.play(t, b, byTerm[b.Term()], next, i)
		for _, a := range b.Directives["after"] {
			if _, aerr := r.Root(a); aerr != nil && err == nil {
				err = fmt.Errorf("after %q: %w", a, aerr)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, b.Name, err)
		}
		out = append(out, Block{Name: b.Name, Directives: b.Directives, Text: text})
	}
	return out, nil
}

// play types block b's commands into t and returns what it showed.
func (r *Recorder) play(t *terminal, b Block, steps []step, next map[string]int, index int) (string, error) {
	timeout := r.Opts.Timeout
	cmds := b.Commands()
	_, isWait := b.Directives["wait"]
	if isWait != (len(cmds) == 0) {
		return "", fmt.Errorf("a block has commands, or is marked wait, not both")
	}
	var text strings.Builder
	start := t.pos
	for _, c := range cmds {
		// The prompt for this command: the start of the block's text is
		// the prompt itself, which the last block left unread.
		at, err := t.waitFor(fmt.Sprintf("the prompt %q before %q", c.Prompt, c.Text),
			timeout, promptAt(c.Prompt, true))
		if err != nil {
			return "", err
		}
		text.WriteString(clean(t.slice(start, at)))
		t.pos = at
		if c.Prompt == OuterPrompt {
			t.pos += len(mark)
		}
		t.pos += len(c.Prompt)
		start = t.pos
		text.WriteString(c.Prompt)
		line, err := r.fill(b, c)
		if err != nil {
			return "", err
		}
		if err := t.typeLine(line); err != nil {
			return "", err
		}
		next[b.Term()]++
	}
	// The end of the block: a pattern in the output, or the prompt of
	// the next command typed in this terminal (the user's, if none).
	if until := b.Directives["until"]; len(until) > 0 {
		re, err := regexp.Compile(until[0])
		if err != nil {
			return "", err
		}
		at, err := t.waitFor(fmt.Sprintf("output matching %q", until[0]), timeout, func(raw []byte) int {
			// Not in the echo of the command line itself.
			echo := bytes.IndexByte(raw, '\n')
			if echo < 0 {
				return -1
			}
			out := raw[echo+1:]
			s := clean(out)
			if loc := re.FindStringIndex(s); loc != nil {
				// The match is in cleaned text; end the block at the end
				// of the raw line that holds it.
				line := strings.Count(s[:loc[1]], "\n")
				if end := rawLineEnd(out, line); end >= 0 {
					return echo + 1 + end
				}
			}
			return -1
		})
		if err != nil {
			return "", err
		}
		text.WriteString(clean(t.slice(start, at)))
		t.pos = at
		return strings.TrimSuffix(text.String(), "\n"), nil
	}
	if ready := b.Directives["ready"]; len(ready) > 0 {
		deadline := time.Now().Add(timeout)
		for {
			if _, err := r.Root(ready[0]); err == nil {
				break
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("waiting for %q to succeed: timed out", ready[0])
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.mu.Lock()
		at := len(t.buf)
		t.mu.Unlock()
		text.WriteString(clean(t.slice(start, at)))
		t.pos = at
		return strings.TrimSuffix(text.String(), "\n"), nil
	}
	following := OuterPrompt
	if n := next[b.Term()]; n < len(steps) {
		following = steps[n].cmd.Prompt
	}
	at, err := t.waitFor(fmt.Sprintf("the prompt %q after the block", following),
		timeout, promptAt(following, false))
	if err != nil {
		return "", err
	}
	text.WriteString(clean(t.slice(start, at)))
	t.pos = at
	return strings.TrimSuffix(text.String(), "\n"), nil
}

// rawLineEnd returns the position just after the newline that ends line
// n (0-based) of raw, or len(raw) if it has not ended yet.
func rawLineEnd(raw []byte, n int) int {
	i := 0
	for ; n >= 0; n-- {
		j := bytes.IndexByte(raw[i:], '\n')
		if j < 0 {
			return -1
		}
		i += j + 1
	}
	return i
}

// fill returns the line to type for c: as written, or, for V=... with a
// set directive for V, V= the output of its command.
func (r *Recorder) fill(b Block, c Command) (string, error) {
	for _, s := range b.Directives["set"] {
		name, cmd, ok := strings.Cut(s, "=")
		if !ok {
			return "", fmt.Errorf("set %q: want NAME=COMMAND", s)
		}
		if strings.HasPrefix(c.Text, name+"=") {
			v, err := r.Root(cmd)
			if err != nil {
				return "", fmt.Errorf("set %s: %w", name, err)
			}
			v = strings.TrimSpace(v)
			if v == "" || strings.ContainsAny(v, " \n") {
				return "", fmt.Errorf("set %s: %q printed %q, not one word", name, cmd, v)
			}
			return name + "=" + v, nil
		}
	}
	return c.Text, nil
}
