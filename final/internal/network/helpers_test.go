package network

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The privileged tests stay inside 10.77.200.0/24 - 10.77.251.0/24, away
// from the steps' and the runtime's 10.77.0-8.0/24, use a table and
// bridges of their own, and only send traffic on loopback and inside the
// network namespaces they create. They run one after another: they share
// net.ipv4.ip_forward, which each test's Reset writes back.

// envHelper makes the test binary a helper process instead of running the
// tests: it connects one namespace (see TestMain).
const envHelper = "GOCELL_NETWORK_TEST_HELPER"

// TestMain runs the helper when asked to: Connect from a separate
// process, as the 50 concurrent monitors of TestConcurrentConnect do. Its
// settings come from the environment; it prints the Endpoint as JSON.
func TestMain(m *testing.M) {
	if os.Getenv(envHelper) == "connect" {
		os.Exit(helperConnect())
	}
	os.Exit(m.Run())
}

// helperConnect is the helper process's main.
func helperConnect() int {
	var o Options
	if err := json.Unmarshal([]byte(os.Getenv("HELPER_OPTIONS")), &o); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	pid, _ := strconv.Atoi(os.Getenv("HELPER_PID"))
	m, err := Open(o)
	if err == nil {
		var ep *Endpoint
		ep, err = m.Connect("", os.Getenv("HELPER_ID"), "", pid, nil)
		if err == nil {
			err = json.NewEncoder(os.Stdout).Encode(ep)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testEnv is one test's gocell network state: its own StateDir, table and
// default bridge, and what the test must find gone at the end.
type testEnv struct {
	t    *testing.T
	m    *Manager
	opts Options
	// links that must not exist after the test.
	links []string
}

// newEnv opens a Manager for one test, with a default network on subnet,
// and registers a cleanup that resets it and checks that nothing is
// left: no links, no nft table, no leases, forwarding as it was.
func newEnv(t *testing.T, subnet string) *testEnv {
	t.Helper()
	forward, err := os.ReadFile(ipForwardPath)
	require.NoError(t, err)
	suffix := strconv.Itoa(os.Getpid() % 100000)
	o := Options{
		StateDir:      t.TempDir(),
		DefaultSubnet: subnet,
		DefaultBridge: "gct" + suffix,
		Table:         "gocelltest" + suffix,
	}
	m, err := Open(o)
	require.NoError(t, err)
	e := &testEnv{t: t, m: m, opts: o, links: []string{o.DefaultBridge}}
	t.Cleanup(func() {
		assert.NoError(t, m.Reset(), "Reset")
		e.assertClean()
		now, err := os.ReadFile(ipForwardPath)
		assert.NoError(t, err)
		assert.Equal(t, string(forward), string(now), "ip_forward is as it was")
	})
	return e
}

// assertIdle checks what the networks keep once their last container has
// gone: no lease is left; the bridges and the table stay, for the next
// container, until Prune, which must then leave nothing.
func (e *testEnv) assertIdle() {
	t := e.t
	t.Helper()
	leases, err := e.m.leasesForTest()
	assert.NoError(t, err)
	assert.Empty(t, leases, "leases are left")
	require.NoError(t, e.m.Prune())
	e.assertClean()
}

// assertClean checks that the test's links, table and leases are gone.
func (e *testEnv) assertClean() {
	t := e.t
	t.Helper()
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	require.NoError(t, err)
	defer h.Close()
	for _, name := range e.links {
		_, err := h.LinkByName(name)
		assert.Error(t, err, "link %s is left", name)
	}
	assert.False(t, e.tableExists(), "table %s is left", e.opts.Table)
	leases, err := e.m.leasesForTest()
	assert.NoError(t, err)
	assert.Empty(t, leases, "leases are left")
}

// leasesForTest reads every lease, under the lock, for an assertion.
func (m *Manager) leasesForTest() ([]*lease, error) {
	var out []*lease
	err := m.locked(func() error {
		var err error
		out, err = m.allLeases()
		return err
	})
	return out, err
}

// tableExists reads the ruleset back: is the test's table there?
func (e *testEnv) tableExists() bool {
	c, err := nftables.New()
	require.NoError(e.t, err)
	tables, err := c.ListTablesOfFamily(nftables.TableFamilyIPv4)
	require.NoError(e.t, err)
	for _, tb := range tables {
		if tb.Name == e.opts.Table {
			return true
		}
	}
	return false
}

// rulesTagged reads every chain of the test's table back and counts the
// rules that carry tag.
func (e *testEnv) rulesTagged(tag string) int {
	if !e.tableExists() {
		return 0
	}
	t, err := e.m.newNFT()
	require.NoError(e.t, err)
	rules, err := t.tagged(tag)
	require.NoError(e.t, err)
	return len(rules)
}

// newNetwork creates a network whose bridge the cleanup checks for.
func (e *testEnv) newNetwork(name, subnet string) *Network {
	e.t.Helper()
	n, err := e.m.Create(name, subnet)
	require.NoError(e.t, err)
	e.links = append(e.links, n.Bridge)
	return n
}

// container is a stand-in for a container: a sleep(1) in a network
// namespace of its own, killed at the end of the test.
type container struct {
	id  string
	pid int
	ep  *Endpoint
}

// newContainer starts a process in a new network namespace, with a
// random container id whose veth the cleanup checks for.
func (e *testEnv) newContainer() *container {
	e.t.Helper()
	c := &container{id: randomID(e.t), pid: startNetns(e.t)}
	e.links = append(e.links, vethName(c.id))
	return c
}

// connect connects a container and fails the test if that fails.
func (e *testEnv) connect(c *container, network, name string, ports ...Port) *Endpoint {
	e.t.Helper()
	ep, err := e.m.Connect(network, c.id, name, c.pid, ports)
	require.NoError(e.t, err)
	c.ep = ep
	return ep
}

// startNetns starts sleep(1) with CLONE_NEWNET and returns its pid; the
// test's cleanup kills it.
func startNetns(t *testing.T) int {
	t.Helper()
	sleep, err := exec.LookPath("sleep")
	require.NoError(t, err, "the tests need sleep(1)")
	cmd := exec.Command(sleep, "600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd.Process.Pid
}

// randomID is a container id like the container package's.
func randomID(t *testing.T) string {
	b := make([]byte, 32)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return hex.EncodeToString(b)
}

// inNetns runs fn on an OS thread that has joined the network namespace
// of pid with setns(2). Sockets keep the namespace they were made in, so
// fn may hand them to other goroutines. Only this thread changes
// namespace; if it cannot change back, it stays locked and dies with its
// goroutine instead of going back to the Go scheduler.
func inNetns(pid int, fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPid(pid)
		if err != nil {
			done <- err
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			done <- err
			return
		}
		err = fn()
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- err
	}()
	return <-done
}

// serve starts a TCP server in pid's network namespace (on the host when
// pid is 0). It answers each connection with one line: "hello from NAME
// to ADDR", ADDR being the client's address as the server sees it.
func serve(t *testing.T, pid int, port int, name string) {
	t.Helper()
	var l net.Listener
	listen := func() (err error) {
		l, err = net.Listen("tcp4", fmt.Sprintf(":%d", port))
		return err
	}
	if pid == 0 {
		require.NoError(t, listen())
	} else {
		require.NoError(t, inNetns(pid, listen))
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s to %s\n", name, c.RemoteAddr())
			c.Close()
		}
	}()
}

// dial connects to addr from pid's network namespace (from the host when
// pid is 0) and returns the server's line.
func dial(pid int, addr string) (string, error) {
	var c net.Conn
	connect := func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}
	var err error
	if pid == 0 {
		err = connect()
	} else {
		err = inNetns(pid, connect)
	}
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}

// freePort finds a TCP port that nothing on the host uses now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// leaseFiles lists the lease files of a network.
func (e *testEnv) leaseFiles(network string) []string {
	names, _ := filepath.Glob(filepath.Join(e.m.leaseDir(network), "*"))
	return names
}
