package container

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

// logEntry is one line of container.log, as Docker's json-file driver
// writes them: which stream, when, and the line itself with its newline.
type logEntry struct {
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
	Log    string    `json:"log"`
}

// logWriter appends entries to a container's log; stdout and stderr are
// copied at the same time, so writes take a lock.
type logWriter struct {
	mu  sync.Mutex
	f   *os.File
	enc *json.Encoder
}

func openLog(dir string) (*logWriter, error) {
	f, err := os.OpenFile(filepath.Join(dir, "container.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &logWriter{f: f, enc: json.NewEncoder(f)}, nil
}

// maxLogLine is the longest piece of output one log entry holds, as in
// Docker's json-file driver: a longer line is split into entries of this
// size, the last one ending with the newline. Without a bound, a process
// that writes without ever ending a line would grow the monitor's memory
// without limit.
const maxLogLine = 16 << 10

// copy logs r line by line as stream, and passes it on to also, if set.
// A write to also that fails (the attached CLI is gone) stops only that.
func (w *logWriter) copy(r io.Reader, stream string, also *os.File) {
	br := bufio.NewReaderSize(r, maxLogLine)
	for {
		// A whole line, or maxLogLine bytes of one (bufio.ErrBufferFull).
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			w.mu.Lock()
			w.enc.Encode(logEntry{Stream: stream, Time: time.Now().UTC(), Log: string(line)})
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

func (w *logWriter) Close() error { return w.f.Close() }

// Logs writes a container's log to stdout and stderr, each line to the
// stream it came from. With follow, it goes on until the container stops.
func (s *Store) Logs(ref string, follow bool, stdout, stderr io.Writer) error {
	st, err := s.Get(ref)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(s.Dir(st.ID), "container.log"))
	if errors.Is(err, os.ErrNotExist) {
		if !follow {
			return nil
		}
	} else if err != nil {
		return fmt.Errorf("logs: %w", err)
	}
	var br *bufio.Reader
	if f != nil {
		defer f.Close()
		br = bufio.NewReader(f)
	}
	for {
		if br != nil {
			for {
				line, err := br.ReadBytes('\n')
				if err != nil {
					// A partial line: read it again when it is whole.
					if len(line) > 0 {
						f.Seek(-int64(len(line)), io.SeekCurrent)
						br.Reset(f)
					}
					break
				}
				var e logEntry
				if json.Unmarshal(line, &e) != nil {
					continue
				}
				if e.Stream == "stderr" {
					io.WriteString(stderr, e.Log)
				} else {
					io.WriteString(stdout, e.Log)
				}
			}
		}
		if !follow {
			return nil
		}
		cur, err := s.Get(st.ID)
		if err != nil || (cur.Status != Running && cur.Status != Paused && cur.Monitor == 0) {
			// One last read: the monitor may have written more.
			follow = false
		}
		if br == nil {
			if f, err = os.Open(filepath.Join(s.Dir(st.ID), "container.log")); err == nil {
				defer f.Close()
				br = bufio.NewReader(f)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
