// Command transcript records the chapters' console blocks and writes the
// recordings back into them (see package internal/transcript).
//
//	transcript play -o DIR [CHAPTER.md ...]   as root, in the machine to record on:
//	                                          play every block, write DIR/NN-name.json
//	transcript apply DIR                      in the repository: keep the recordings
//	                                          in lessons/transcripts and put them in
//	                                          the chapters
//
// make transcripts runs play inside the kit's test VM (scripts/vmtest),
// where the chapters' machine is: cgroup v2, a user named vagrant, the
// repository at /vagrant, the host name gocell-vm; then apply.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gocell/gocell/internal/transcript"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "play":
		err = play(os.Args[2:])
	case "apply":
		if len(os.Args) != 3 {
			usage()
		}
		err = apply(os.Args[2])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "transcript: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: transcript play -o DIR [CHAPTER.md ...] | transcript apply DIR")
	os.Exit(2)
}

func play(args []string) error {
	fs := flag.NewFlagSet("play", flag.ExitOnError)
	outDir := fs.String("o", "", "where to write the recordings")
	userName := fs.String("user", "vagrant", "the learner's user, who types the commands")
	timeout := fs.Duration("timeout", 3*time.Minute, "the longest wait for one command")
	fs.Parse(args)
	if *outDir == "" {
		return fmt.Errorf("play: -o DIR is needed")
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("play: run as root (the chapters' hidden set-up runs as root)")
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	u, err := user.Lookup(*userName)
	if err != nil {
		return fmt.Errorf("play: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	chapters := fs.Args()
	if len(chapters) == 0 {
		if chapters, err = transcript.Chapters(wd); err != nil {
			return err
		}
	}
	rec := &transcript.Recorder{
		Opts: transcript.Options{
			Dir: wd, UID: uint32(uid), GID: uint32(gid), Timeout: *timeout,
			Env: []string{"HOME=" + u.HomeDir, "USER=" + u.Username, "LOGNAME=" + u.Username,
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm", "LANG=C.UTF-8"},
		},
		Root: func(cmd string) (string, error) {
			out, err := exec.Command("sh", "-c", cmd).Output()
			if err != nil {
				if ee, ok := err.(*exec.ExitError); ok {
					err = fmt.Errorf("%w: %s", err, ee.Stderr)
				}
			}
			return string(out), err
		},
	}
	machine := describe()
	for _, ch := range chapters {
		data, err := os.ReadFile(filepath.Join(wd, "lessons", ch))
		if err != nil {
			return err
		}
		blocks, _, err := transcript.Parse(data)
		if err != nil {
			return fmt.Errorf("%s: %w", ch, err)
		}
		fmt.Fprintf(os.Stderr, "transcript: %s: %d blocks\n", ch, len(blocks))
		start := time.Now()
		got, err := rec.Record(ch, blocks)
		if err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "transcript: %s: recorded in %s\n", ch, time.Since(start).Round(time.Second))
		if err := transcript.Save(*outDir, transcript.Chapter{File: ch, Machine: machine, Blocks: got}); err != nil {
			return err
		}
	}
	return nil
}

// describe says where the recording was made, for the reader.
func describe() string {
	host, _ := os.Hostname()
	rel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cg := "cgroup v1"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cg = "cgroup v2"
	}
	return fmt.Sprintf("%s: the kit's test VM (make transcripts), Linux %s, %s, %d CPUs, %s",
		host, strings.TrimSpace(string(rel)), cg, runtime.NumCPU(), time.Now().UTC().Format("2006-01-02"))
}

func apply(dir string) error {
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	files, err := filepath.Glob(filepath.Join(dir, transcript.Dir, "*.json"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("apply: no recordings in %s", filepath.Join(dir, transcript.Dir))
	}
	for _, f := range files {
		c, err := transcript.Load(dir, strings.TrimSuffix(filepath.Base(f), ".json")+".md")
		if err != nil {
			return err
		}
		path := filepath.Join(wd, "lessons", c.File)
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		out, err := transcript.Splice(data, c)
		if err != nil {
			return err
		}
		if err := os.WriteFile(path, out, 0o644); err != nil {
			return err
		}
		if err := transcript.Save(wd, c); err != nil {
			return err
		}
		fmt.Printf("transcript: %s: %d blocks from %s\n", c.File, len(c.Blocks), c.Machine)
	}
	return nil
}
