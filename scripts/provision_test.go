// Package scripts holds the kit's shell scripts; this test checks the
// parts of scripts/provision.sh that can run without touching the machine,
// by sourcing the script (which then runs no main) and calling a function.
package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// provision runs bash with provision.sh sourced, then the script.
func provision(t *testing.T, script string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("bash", append([]string{"-c", "source ./provision.sh && " + script, "provision"}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestUseAptMirror: GOCELL_APT_MIRROR moves the official Debian and Ubuntu
// archives, in one-line and deb822 files, to the mirror; keeps the
// originals outside sources.list.d; leaves other repositories alone; does
// the same on a second run; and refuses a URL with a path before it
// changes anything.
func TestUseAptMirror(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"sources.list": "deb http://deb.debian.org/debian bookworm main\n" +
			"deb http://security.debian.org/debian-security bookworm-security main\n",
		"sources.list.d/ubuntu.sources": "Types: deb\nURIs: http://archive.ubuntu.com/ubuntu/\nSuites: noble\n\n" +
			"Types: deb\nURIs: http://security.ubuntu.com/ubuntu/\nSuites: noble-security\n",
		"sources.list.d/ports.list":  "deb http://ports.ubuntu.com/ubuntu-ports noble main\ndeb http://cn.archive.ubuntu.com/ubuntu noble main\n",
		"sources.list.d/vendor.list": "deb https://download.example.com/linux/debian bookworm stable\n",
	}
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}

	if out, err := provision(t, `use_apt_mirror "$1" "$2"`, "https://mirror.example/path", dir); err == nil ||
		!strings.Contains(out, "want only the scheme and host") {
		t.Errorf("a mirror URL with a path: err %v, output %q; want a refusal", err, out)
	}
	if got := read("sources.list"); got != files["sources.list"] {
		t.Errorf("a refused mirror changed sources.list:\n%s", got)
	}

	for run := 1; run <= 2; run++ {
		if out, err := provision(t, `use_apt_mirror "$1" "$2"`, "https://mirrors.tuna.tsinghua.edu.cn/", dir); err != nil {
			t.Fatalf("run %d: %v\n%s", run, err, out)
		}
		want := map[string]string{
			"sources.list": "deb https://mirrors.tuna.tsinghua.edu.cn/debian bookworm main\n" +
				"deb https://mirrors.tuna.tsinghua.edu.cn/debian-security bookworm-security main\n",
			"sources.list.d/ubuntu.sources": "Types: deb\nURIs: https://mirrors.tuna.tsinghua.edu.cn/ubuntu/\nSuites: noble\n\n" +
				"Types: deb\nURIs: https://mirrors.tuna.tsinghua.edu.cn/ubuntu/\nSuites: noble-security\n",
			"sources.list.d/ports.list": "deb https://mirrors.tuna.tsinghua.edu.cn/ubuntu-ports noble main\n" +
				"deb https://mirrors.tuna.tsinghua.edu.cn/ubuntu noble main\n",
			"sources.list.d/vendor.list": files["sources.list.d/vendor.list"],
		}
		for name, w := range want {
			if got := read(name); got != w {
				t.Errorf("run %d: %s is\n%s\nwant\n%s", run, name, got, w)
			}
			// The originals, from before the first run.
			if name != "sources.list.d/vendor.list" {
				if got := read("gocell-orig/" + name); got != files[name] {
					t.Errorf("run %d: gocell-orig/%s is\n%s\nwant the original\n%s", run, name, got, files[name])
				}
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "sources.list.d", "vendor.list.gocell-orig")); err == nil {
		t.Error("a backup in sources.list.d, where apt reads it")
	}
}
