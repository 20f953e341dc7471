// Package selftest proves that scripts/vmtest works: that the VM it boots
// has what the steps' privileged tests need (cgroup v2 with controllers,
// the kernel modules, a pivot_root-able root, an exec-able /tmp), and that
// a failing, panicking or hanging test turns the whole run red.
//
// It lives under testdata/ so that `go test ./...` never sees it. Run it
// with:
//
//	scripts/vmtest/run.sh ./scripts/vmtest/testdata/selftest
//
// and make it misbehave on purpose through the kernel command line, whose
// unknown NAME=value words become environment variables of the VM's init
// and so of the tests:
//
//	VMTEST_APPEND=GOCELL_SELFTEST=fail   a test fails        -> run fails
//	VMTEST_APPEND=GOCELL_SELFTEST=panic  the kernel panics   -> run fails
//	VMTEST_APPEND=GOCELL_SELFTEST=hang   the test never ends -> host timeout
//	VMTEST_APPEND=GOCELL_SELFTEST=leak   leaves a process, a mount, a link
//	                                     -> LEAK warnings, the run goes on
package selftest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func priv(t *testing.T) {
	t.Helper()
	if os.Getenv("GOCELL_PRIV_TESTS") != "1" {
		t.Skip("privileged test; set GOCELL_PRIV_TESTS=1 (scripts/vmtest does)")
	}
	if os.Geteuid() != 0 {
		t.Fatal("GOCELL_PRIV_TESTS=1 but not root")
	}
}

// TestMain doubles as the re-executed child for TestPivotRoot and TestNobody,
// the way the steps re-execute their own binary.
func TestMain(m *testing.M) {
	switch os.Getenv("SELFTEST_CHILD") {
	case "pivot":
		os.Exit(pivotChild())
	case "nobody":
		if os.Getuid() != 65534 {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestCgroupV2Controllers(t *testing.T) {
	priv(t)
	if os.Getenv("GOCELL_VMTEST_CGROUP") == "v1" {
		for _, c := range []string{"memory", "pids", "cpu", "cpuset", "freezer"} {
			if _, err := os.Stat("/sys/fs/cgroup/" + c + "/tasks"); err != nil {
				t.Errorf("cgroup v1 %s: %v", c, err)
			}
		}
		return
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	// CGROUP2_SUPER_MAGIC, see statfs(2).
	if st.Type != 0x63677270 {
		t.Fatalf("/sys/fs/cgroup is not cgroup2 (magic %#x)", st.Type)
	}
	for _, f := range []string{"cgroup.controllers", "cgroup.subtree_control"} {
		b, err := os.ReadFile("/sys/fs/cgroup/" + f)
		if err != nil {
			t.Fatal(err)
		}
		have := " " + strings.Join(strings.Fields(string(b)), " ") + " "
		for _, c := range []string{"cpu", "memory", "pids"} {
			if !strings.Contains(have, " "+c+" ") {
				t.Errorf("%s lacks %q: %q", f, c, b)
			}
		}
	}
}

func TestModules(t *testing.T) {
	priv(t)
	fs, err := os.ReadFile("/proc/filesystems")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(fs), "overlay") {
		t.Error("overlay is not in /proc/filesystems")
	}
	for _, m := range []string{"veth", "bridge", "nf_tables", "nft_chain_nat", "nft_masq", "nf_conntrack"} {
		if _, err := os.Stat("/sys/module/" + m); err != nil {
			t.Errorf("module %s not loaded: %v", m, err)
		}
	}
	// Really use two of them: a veth pair and an overlay mount.
	out, err := exec.Command("ip", "link", "add", "vt0", "type", "veth", "peer", "name", "vt1").CombinedOutput()
	if err != nil {
		t.Errorf("ip link add veth: %v: %s", err, out)
	} else {
		exec.Command("ip", "link", "del", "vt0").Run()
	}
	d := t.TempDir()
	for _, s := range []string{"lower", "upper", "work", "merged"} {
		os.Mkdir(filepath.Join(d, s), 0o755)
	}
	opts := "lowerdir=" + d + "/lower,upperdir=" + d + "/upper,workdir=" + d + "/work"
	if err := syscall.Mount("overlay", d+"/merged", "overlay", 0, opts); err != nil {
		t.Errorf("mount overlay: %v", err)
	} else {
		syscall.Unmount(d+"/merged", 0)
	}
}

// pivotChild runs in a new mount namespace and pivots into the rootfs,
// which is what step 03 does; it fails with EINVAL if the VM's root were
// still the initramfs.
func pivotChild() int {
	root := os.Getenv("GOCELL_ROOTFS")
	must := func(err error) {
		if err != nil {
			println("pivot child:", err.Error())
			os.Exit(2)
		}
	}
	must(syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""))
	must(syscall.Mount(root, root, "", syscall.MS_BIND|syscall.MS_REC, ""))
	old := filepath.Join(root, ".old")
	os.Mkdir(old, 0o700)
	must(syscall.PivotRoot(root, old))
	must(syscall.Chdir("/"))
	must(syscall.Unmount("/.old", syscall.MNT_DETACH))
	if _, err := os.Stat("/etc/gocell-rootfs"); err != nil {
		println("pivot child: not in the rootfs:", err.Error())
		return 4
	}
	return 0
}

func TestPivotRoot(t *testing.T) {
	priv(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "SELFTEST_CHILD=pivot")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pivot_root in a new mount namespace: %v: %s", err, out)
	}
}

// TestNobody copies the test binary to /tmp and runs it as uid 65534,
// as the user-namespace steps do: /tmp must be world-writable and allow exec.
func TestNobody(t *testing.T) {
	priv(t)
	b, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.MkdirTemp("/tmp", "nobody")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(d)
	os.Chmod(d, 0o755)
	bin := filepath.Join(d, "selftest")
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Dir = "/"
	cmd.Env = []string{"SELFTEST_CHILD=nobody"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("run as nobody from /tmp: %v: %s", err, out)
	}
}

// TestSourceTree checks that the test runs in its package's directory of
// a copy of the source tree, as under `go test`, so relative paths work.
func TestSourceTree(t *testing.T) {
	if _, err := os.Stat("selftest_test.go"); err != nil {
		t.Errorf("not in the package directory: %v", err)
	}
}

// TestMisbehave fails, panics the kernel or hangs on request.
func TestMisbehave(t *testing.T) {
	switch os.Getenv("GOCELL_SELFTEST") {
	case "fail":
		t.Fatal("failing on purpose (GOCELL_SELFTEST=fail)")
	case "panic":
		// sysrq c crashes the kernel, as a kernel bug would.
		os.WriteFile("/proc/sysrq-trigger", []byte("c"), 0)
		time.Sleep(time.Minute)
	case "hang":
		time.Sleep(24 * time.Hour)
	case "leak":
		// Leave a process that holds the test's stdout, a mount and a
		// veth link behind: the VM must still finish and report them.
		cmd := exec.Command("sleep", "3600")
		cmd.Stdout = os.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		os.MkdirAll("/tmp/leaked", 0o755)
		syscall.Mount("tmpfs", "/tmp/leaked", "tmpfs", 0, "")
		exec.Command("ip", "link", "add", "leak0", "type", "veth", "peer", "name", "leak1").Run()
	}
}
