package image

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestProgressPlain(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	a := p.layer("sha256:"+strings.Repeat("a", 64), 0)
	b := p.layer("sha256:"+strings.Repeat("b", 64), 0)
	a.start(2_000_000)
	a.add(1_200_000)
	assert.Empty(t, out.String(), "no partial lines in logs")
	a.add(800_000)
	a.done()
	b.exists()
	p.printf("note %d", 1)
	assert.Equal(t, "layer sha256:aaaaaaaaaaaa 2.0 MB done\n"+
		"layer sha256:bbbbbbbbbbbb already exists\nnote 1\n", out.String())
}

func TestProgressTerminal(t *testing.T) {
	var out bytes.Buffer
	p := newProgress(&out)
	p.tty = true // as if out were a terminal
	a := p.layer("sha256:"+strings.Repeat("a", 64), 0)
	a.start(3_400_000)
	p.last = time.Time{} // pretend the redraw interval has passed
	a.add(1_700_000)
	a.done()
	s := out.String()
	assert.Contains(t, s, "layer sha256:aaaaaaaaaaaa [===============>              ] 1.7 MB / 3.4 MB\n")
	assert.Contains(t, s, "\x1b[1A\x1b[J", "redrawn in place")
	assert.True(t, strings.HasSuffix(s, "layer sha256:aaaaaaaaaaaa 1.7 MB done\n"))

	// Silence.
	var nilProgress *progress
	nilProgress.printf("nothing")
	newProgress(nil).layer("sha256:"+strings.Repeat("c", 64), 0).done()
}
