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

// Logs writes a container's log to stdout and stderr, each line to the
// stream it came from. With follow, it goes on until the container stops.
func (s *Store) Logs(ref string, follow bool, stdout, stderr io.Writer) error {
	st, err := s.Get(ref)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(s.Dir(st.ID), logfile.Name))
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
				var e logfile.Entry
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
			if f, err = os.Open(filepath.Join(s.Dir(st.ID), logfile.Name)); err == nil {
				defer f.Close()
				br = bufio.NewReader(f)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
}
