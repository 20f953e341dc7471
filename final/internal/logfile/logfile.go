// Package logfile writes a container's output to its container.log, one
// JSON object a line, as Docker's json-file logging driver does. Both the
// monitor (attached runs) and the shim (detached ones) log through it, and
// `gocell logs` reads the same Entry back; it imports nothing heavy, so
// the small gocell-shim binary can hold it.
package logfile

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Name is the log's file name in the container's directory.
const Name = "container.log"

// Entry is one line of container.log: which stream, when, and the line
// itself with its newline.
type Entry struct {
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
	Log    string    `json:"log"`
}

// Writer appends entries to a container's log; stdout and stderr are
// copied at the same time, so writes take a lock.
type Writer struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
}

// Open opens the log in the container's directory dir, for appending.
func Open(dir string) (*Writer, error) {
	f, err := os.OpenFile(filepath.Join(dir, Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return NewWriter(f), nil
}

// NewWriter logs to f, an open container.log (the shim's, inherited).
func NewWriter(f *os.File) *Writer {
	return &Writer{f: f, enc: json.NewEncoder(f)}
}

// File is the open log file.
func (w *Writer) File() *os.File { return w.f }

// maxLine is the longest piece of output one log entry holds, as in
// Docker's json-file driver: a longer line is split into entries of this
// size, the last one ending with the newline. Without a bound, a process
// that writes without ever ending a line would grow the memory of the
// process that logs it without limit.
const maxLine = 16 << 10

// Copy logs r line by line as stream, and passes it on to also, if set.
// A write to also that fails (the attached CLI is gone) stops only that.
func (w *Writer) Copy(r io.Reader, stream string, also *os.File) {
	br := bufio.NewReaderSize(r, maxLine)
	for {
		// A whole line, or maxLine bytes of one (bufio.ErrBufferFull).
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			w.mu.Lock()
			w.enc.Encode(Entry{Stream: stream, Time: time.Now().UTC(), Log: string(line)})
			w.mu.Unlock()
			if also != nil {
				if _, werr := also.Write(line); werr != nil {
					also = nil
				}
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return
		}
	}
}

// Close closes the log file.
func (w *Writer) Close() error { return w.f.Close() }
