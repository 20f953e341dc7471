package image

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// progress reports a pull to a writer. On a terminal each layer has a line
// that is redrawn as bytes arrive; anywhere else (a log file, a pipe, a
// test) each layer gets one plain line when it is finished, so logs stay
// readable. A nil *progress, or one with a nil writer, reports nothing.
type progress struct {
	w     io.Writer
	tty   bool
	mu    sync.Mutex
	bars  []*bar
	drawn int       // lines of bars currently on screen (tty only)
	last  time.Time // last redraw, to redraw at most every redrawEvery
}

// redrawEvery throttles terminal updates: a fast local registry would
// otherwise redraw thousands of times a second.
const redrawEvery = 100 * time.Millisecond

// newProgress reports to w; nil w means silence.
func newProgress(w io.Writer) *progress {
	return &progress{w: w, tty: isTerminal(w)}
}

// isTerminal reports whether w is a terminal (TCGETS succeeds on it).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || f == nil {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// printf writes one line of narration, e.g. which mirror served the pull.
func (p *progress) printf(format string, args ...any) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.redraw()
}

// bar is one layer's line.
type bar struct {
	p      *progress
	id     string // "sha256:0123456789ab"
	total  int64  // bytes expected, 0 if unknown
	n      int64  // bytes so far
	status string // "waiting", "" while transferring, or a final word
}

// layer adds a line for the layer with this DiffID.
func (p *progress) layer(diffID string, total int64) *bar {
	b := &bar{p: p, id: "sha256:" + shortHex(diffID), total: total,
		status: "waiting"}
	if p != nil {
		p.mu.Lock()
		p.bars = append(p.bars, b)
		p.mu.Unlock()
	}
	return b
}

// start marks the transfer begun, with total bytes expected (0: unknown).
func (b *bar) start(total int64) {
	b.update(func() { b.total, b.status = total, "" }, false)
}

// add counts n more bytes.
func (b *bar) add(n int64) {
	b.update(func() { b.n += n }, false)
}

// exists marks a layer that was already stored: nothing to fetch.
func (b *bar) exists() { b.update(func() { b.status = "already exists" }, true) }

// done marks the layer stored.
func (b *bar) done() { b.update(func() { b.status = "done" }, true) }

// fail marks the layer failed; the error itself is returned to the caller.
func (b *bar) fail() { b.update(func() { b.status = "failed" }, true) }

// update changes the bar under the lock and shows it: on a terminal by a
// (throttled) redraw, elsewhere only when final.
func (b *bar) update(change func(), final bool) {
	p := b.p
	if p == nil {
		change()
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	change()
	if p.w == nil {
		return
	}
	if !p.tty {
		if final {
			fmt.Fprintln(p.w, b.text())
		}
		return
	}
	if final || time.Since(p.last) >= redrawEvery {
		p.clear()
		p.redraw()
	}
}

// text is the bar's line: "layer sha256:0123456789ab 1.2 MB done", or on
// a terminal while running, "layer sha256:… [=====>    ] 1.2 MB / 3.4 MB".
func (b *bar) text() string {
	line := "layer " + b.id
	switch {
	case b.status == "" && b.total > 0:
		const width = 30
		fill := int(int64(width) * min(b.n, b.total) / b.total)
		arrow := strings.Repeat("=", fill)
		if fill < width {
			arrow += ">" + strings.Repeat(" ", width-fill-1)
		}
		return fmt.Sprintf("%s [%s] %s / %s", line, arrow,
			humanSize(b.n), humanSize(b.total))
	case b.status == "":
		return line + " " + humanSize(b.n)
	case b.status == "waiting" || b.status == "already exists":
		return line + " " + b.status
	default:
		return line + " " + humanSize(b.n) + " " + b.status
	}
}

// clear moves the cursor back over the bars drawn last time and erases
// them (ESC[nA: up n lines, ESC[J: erase to end of screen).
func (p *progress) clear() {
	if p.tty && p.drawn > 0 {
		fmt.Fprintf(p.w, "\x1b[%dA\x1b[J", p.drawn)
		p.drawn = 0
	}
}

// redraw writes all bars (terminal only).
func (p *progress) redraw() {
	if !p.tty {
		return
	}
	for _, b := range p.bars {
		fmt.Fprintln(p.w, b.text())
	}
	p.drawn = len(p.bars)
	p.last = time.Now()
}

// humanSize formats bytes in decimal units as docker does: "850 B",
// "1.2 MB".
func humanSize(n int64) string {
	const unit = 1000
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	f := float64(n)
	for _, u := range []string{"kB", "MB", "GB", "TB"} {
		f /= unit
		if f < unit || u == "TB" {
			return fmt.Sprintf("%.1f %s", f, u)
		}
	}
	return "" // not reached
}
