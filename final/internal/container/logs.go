package container

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gocell/gocell/final/internal/logfile"
	"io"
	"os"
	"path/filepath"
	"time"
)

// LogOptions choose what Logs shows.
type LogOptions struct {
	// Follow goes on until the container stops.
	Follow bool
	// Tail shows only the last Tail lines of what is logged so far
	// (then, with Follow, everything new); -1 shows all.
	Tail int
	// Since, if not zero, leaves out lines logged before it.
	Since time.Time
	// Timestamps puts the time each line was logged before it, as
	// Docker's -t does (RFC 3339, nanoseconds, UTC).
	Timestamps bool
}

// Logs writes a container's log to stdout and stderr, each line to the
// stream it came from.
func (s *Store) Logs(ref string, o LogOptions, stdout, stderr io.Writer) error {
	st, err := s.Get(ref)
	if err != nil {
		return err
	}
	write := func(e logfile.Entry) {
		if !o.Since.IsZero() && e.Time.Before(o.Since) {
			return
		}
		text := e.Log
		if o.Timestamps {
			text = e.Time.UTC().Format(time.RFC3339Nano) + " " + text
		}
		if e.Stream == "stderr" {
			io.WriteString(stderr, text)
		} else {
			io.WriteString(stdout, text)
		}
	}
	// What is logged so far is read first, and held back until the end
	// is known: --tail counts from there.
	var backlog []logfile.Entry
	first := true
	emit := func(e logfile.Entry) {
		if first {
			backlog = append(backlog, e)
			return
		}
		write(e)
	}
	follow := o.Follow
	f, err := os.Open(filepath.Join(s.Dir(st.ID), logfile.Name))
	if errors.Is(err, os.ErrNotExist) {
		f = nil
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
				var e logfile.Entry
				if json.Unmarshal(line, &e) != nil {
					continue
				}
				emit(e)
			}
		}
		if first {
			first = false
			if o.Tail >= 0 && len(backlog) > o.Tail {
				backlog = backlog[len(backlog)-o.Tail:]
			}
			for _, e := range backlog {
				write(e)
			}
			backlog = nil
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
			if f, err = os.Open(filepath.Join(s.Dir(st.ID), logfile.Name)); err == nil {
				defer f.Close()
				br = bufio.NewReader(f)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
