package network

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gocell/gocell/internal/celltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Two containers on one network reach each other; a container on another
// network reaches neither. Hosts lists the named containers of a network.
func TestReachability(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.200.0/24")
	other := e.newNetwork("t-other", "10.77.201.0/24")
	a, b, c := e.newContainer(), e.newContainer(), e.newContainer()
	epA := e.connect(a, "", "a")
	epB := e.connect(b, DefaultNetwork, "b")
	epC := e.connect(c, other.Name, "c")
	assert.Equal(t, "10.77.200.2", epA.IP)
	assert.Equal(t, "10.77.200.3", epB.IP)
	assert.Equal(t, "10.77.201.2", epC.IP)
	assert.Equal(t, "10.77.200.1", epA.Gateway)
	serve(t, a.pid, 80, "a")
	serve(t, c.pid, 80, "c")

	line, err := dial(b.pid, epA.IP+":80")
	require.NoError(t, err, "b reaches a on the same network")
	assert.Equal(t, "hello from a to 10.77.200.3", line[:strings.LastIndexByte(line, ':')])

	_, err = dial(c.pid, epA.IP+":80")
	assert.Error(t, err, "c, on another network, must not reach a")
	_, err = dial(a.pid, epC.IP+":80")
	assert.Error(t, err, "a must not reach c on another network")

	hosts, err := e.m.Hosts("")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": epA.IP, "b": epB.IP}, hosts)

	for _, ctr := range []*container{a, b, c} {
		require.NoError(t, e.m.Disconnect(ctr.ep))
		require.NoError(t, e.m.Disconnect(ctr.ep), "Disconnect is idempotent")
	}
	// The bridges and the table stay for the next container, as docker0
	// does; Prune removes what no endpoint uses.
	for _, bridge := range []string{e.opts.DefaultBridge, other.Bridge} {
		ok, err := linkExists(bridge)
		require.NoError(t, err)
		assert.True(t, ok, "bridge %s is kept", bridge)
	}
	assert.True(t, e.tableExists(), "the table is kept")
	require.NoError(t, e.m.Prune())
	e.assertClean()
}

// A published port answers at 127.0.0.1:PORT on the host, and at the
// gateway's address from another container (hairpin NAT); after
// Disconnect the port is closed and no rule is left.
func TestPublishedPort(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.210.0/24")
	server, client, local := e.newContainer(), e.newContainer(), e.newContainer()
	port, port2 := freePort(t), freePort(t)
	epS := e.connect(server, "", "server", Port{HostPort: port, ContainerPort: 80, Proto: "tcp"})
	epC := e.connect(client, "", "client")
	epL := e.connect(local, "", "local", Port{HostIP: "127.0.0.1", HostPort: port2, ContainerPort: 8080, Proto: "tcp"})
	serve(t, server.pid, 80, "server")
	serve(t, local.pid, 8080, "local")
	assert.Equal(t, 2, e.rulesTagged(containerTag(server.id)), "prerouting and output")

	line, err := dial(0, fmt.Sprintf("127.0.0.1:%d", port))
	require.NoError(t, err, "from the host at 127.0.0.1")
	assert.Contains(t, line, "hello from server to "+epS.Gateway+":", "masqueraded to the bridge's address")

	line, err = dial(client.pid, fmt.Sprintf("%s:%d", epC.Gateway, port))
	require.NoError(t, err, "from another container via the bridge's address")
	assert.Contains(t, line, "hello from server to "+epS.Gateway+":", "hairpin NAT")

	line, err = dial(0, fmt.Sprintf("127.0.0.1:%d", port2))
	require.NoError(t, err, "HOSTIP 127.0.0.1")
	assert.Contains(t, line, "hello from local to ")

	// A program that binds the port on the host after Connect is shadowed
	// while the container publishes it (see the package comment).
	serve(t, 0, port2, "host")
	line, err = dial(0, fmt.Sprintf("127.0.0.1:%d", port2))
	require.NoError(t, err)
	assert.Contains(t, line, "hello from local to ")

	require.NoError(t, e.m.Disconnect(epS))
	assert.Zero(t, e.rulesTagged(containerTag(server.id)), "no rule is left")
	_, err = dial(0, fmt.Sprintf("127.0.0.1:%d", port))
	assert.Error(t, err, "the port is closed")
	line, err = dial(0, fmt.Sprintf("127.0.0.1:%d", port2))
	require.NoError(t, err, "the other container's port still works")
	assert.Contains(t, line, "hello from local to ")
	require.NoError(t, e.m.Disconnect(epL))
	assert.Zero(t, e.rulesTagged(containerTag(local.id)))
	line, err = dial(0, fmt.Sprintf("127.0.0.1:%d", port2))
	require.NoError(t, err)
	assert.Contains(t, line, "hello from host", "the host's own listener is no longer shadowed")
}

// A container's connections to the outside leave with the host's address.
// "The outside" is a namespace of the test's, joined to the host by a veth
// pair on 10.77.251.0/30.
func TestOutboundNAT(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.220.0/24")
	outside := startNetns(t)
	hostEnd := fmt.Sprintf("gto%d", os.Getpid()%100000)
	e.links = append(e.links, hostEnd)
	makeOutside(t, outside, hostEnd)
	serve(t, outside, 8080, "outside")

	ctr := e.newContainer()
	ep := e.connect(ctr, "", "ctr")
	line, err := dial(ctr.pid, "10.77.251.2:8080")
	require.NoError(t, err, "the container reaches the outside")
	assert.Contains(t, line, "hello from outside to 10.77.251.1:", "the outside sees the host's address")
	assert.NotContains(t, line, ep.IP)
	require.NoError(t, e.m.Disconnect(ep))
}

// makeOutside joins a namespace to the host with a veth pair: the host's
// end is 10.77.251.1/30, the namespace's eth0 10.77.251.2/30. The kernel
// adds the route to 10.77.251.0/30 on both sides.
func makeOutside(t *testing.T, pid int, hostEnd string) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	require.NoError(t, err)
	defer h.Close()
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: hostEnd}, PeerName: "eth0", PeerNamespace: netlink.NsPid(pid)}
	require.NoError(t, h.LinkAdd(veth))
	t.Cleanup(func() { _ = deleteLink(hostEnd) })
	addr, err := netlink.ParseAddr("10.77.251.1/30")
	require.NoError(t, err)
	require.NoError(t, h.AddrAdd(veth, addr))
	require.NoError(t, h.LinkSetUp(veth))

	ns, err := netns.GetFromPid(pid)
	require.NoError(t, err)
	defer ns.Close()
	in, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	require.NoError(t, err)
	defer in.Close()
	eth0, err := in.LinkByName("eth0")
	require.NoError(t, err)
	addr, err = netlink.ParseAddr("10.77.251.2/30")
	require.NoError(t, err)
	require.NoError(t, in.AddrAdd(eth0, addr))
	require.NoError(t, in.LinkSetUp(eth0))
	lo, err := in.LinkByName("lo")
	require.NoError(t, err)
	require.NoError(t, in.LinkSetUp(lo))
}

// 50 processes connect at once and get 50 different addresses; after they
// are all disconnected, the pool is whole again.
func TestConcurrentConnect(t *testing.T) {
	celltest.RequirePriv(t)
	const n = 50
	e := newEnv(t, "10.77.230.0/24")
	opts, err := json.Marshal(e.opts)
	require.NoError(t, err)
	ctrs := make([]*container, n)
	for i := range ctrs {
		ctrs[i] = e.newContainer()
	}
	self, err := os.Executable()
	require.NoError(t, err)

	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(self, "-test.run=^$")
			cmd.Env = append(os.Environ(), envHelper+"=connect", "HELPER_OPTIONS="+string(opts),
				fmt.Sprintf("HELPER_PID=%d", c.pid), "HELPER_ID="+c.id)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				errs[i] = fmt.Errorf("helper %d: %v: %s", i, err, stderr.String())
				return
			}
			errs[i] = json.Unmarshal(out, &c.ep)
		}()
	}
	wg.Wait()
	t.Logf("%d concurrent Connects from separate processes took %v", n, time.Since(start))
	for _, err := range errs {
		require.NoError(t, err)
	}

	seen := map[string]bool{}
	var ips []string
	for _, c := range ctrs {
		assert.False(t, seen[c.ep.IP], "address %s handed out twice", c.ep.IP)
		seen[c.ep.IP] = true
		ips = append(ips, c.ep.IP)
		ok, err := linkExists(c.ep.HostVeth)
		require.NoError(t, err)
		assert.True(t, ok, "veth %s", c.ep.HostVeth)
	}
	sort.Slice(ips, func(i, j int) bool { return bytes.Compare(net.ParseIP(ips[i]), net.ParseIP(ips[j])) < 0 })
	assert.Equal(t, "10.77.230.2", ips[0])
	assert.Equal(t, "10.77.230.51", ips[n-1], "the 50 lowest addresses")
	assert.Len(t, e.leaseFiles(DefaultNetwork), n)

	for _, c := range ctrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.NoError(t, e.m.Disconnect(c.ep))
		}()
	}
	wg.Wait()
	assert.Empty(t, e.leaseFiles(DefaultNetwork))
	e.assertIdle()

	again := e.newContainer()
	assert.Equal(t, "10.77.230.2", e.connect(again, "", "").IP, "the pool is whole again")
	require.NoError(t, e.m.Disconnect(again.ep))
}

// Bad input is refused with a clear error, and nothing is left half-made.
func TestConnectRefuses(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.240.0/24")
	net2 := e.newNetwork("t-refuse", "10.77.241.0/24")
	ctr := e.newContainer()

	// A port a program on the host uses.
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	_, err = e.m.Connect("", ctr.id, "x", ctr.pid, []Port{{HostPort: busyPort, ContainerPort: 80, Proto: "tcp"}})
	assert.ErrorIs(t, err, ErrPortInUse)
	assert.Contains(t, err.Error(), "a program on the host uses")
	e.assertIdle()

	// A HOSTIP that is not the host's.
	_, err = e.m.Connect("", ctr.id, "x", ctr.pid, []Port{{HostIP: "192.0.2.254", HostPort: 8, ContainerPort: 80, Proto: "tcp"}})
	assert.ErrorIs(t, err, ErrInvalid)
	assert.Contains(t, err.Error(), "not an address of this host")

	// A port another container publishes.
	port := freePort(t)
	first := e.newContainer()
	e.connect(first, "", "first", Port{HostPort: port, ContainerPort: 80, Proto: "tcp"})
	_, err = e.m.Connect(net2.Name, ctr.id, "x", ctr.pid, []Port{{HostIP: "127.0.0.1", HostPort: port, ContainerPort: 81, Proto: "tcp"}})
	assert.ErrorIs(t, err, ErrPortInUse)
	assert.Contains(t, err.Error(), "publishes")
	assert.Empty(t, e.leaseFiles(net2.Name))

	// Malformed and mismatched arguments.
	_, err = e.m.Connect("", "NOT-AN-ID", "x", ctr.pid, nil)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = e.m.Connect("", ctr.id, "bad name", ctr.pid, nil)
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = e.m.Connect("nope", ctr.id, "x", ctr.pid, nil)
	assert.ErrorIs(t, err, ErrNotFound)
	_, err = e.m.Connect("", ctr.id, "x", os.Getpid(), nil)
	assert.ErrorIs(t, err, ErrInvalid, "our own pid is in the host's namespace")
	assert.Contains(t, err.Error(), "network namespace of its own")
	_, err = e.m.Connect("", ctr.id, "x", ctr.pid, []Port{{HostPort: 0, ContainerPort: 80, Proto: "tcp"}})
	assert.ErrorIs(t, err, ErrInvalid)
	_, err = e.m.Connect("", ctr.id, "x", ctr.pid, []Port{{HostPort: 7001, ContainerPort: 80, Proto: "tcp"}, {HostPort: 7001, ContainerPort: 81, Proto: "tcp"}})
	assert.ErrorIs(t, err, ErrPortInUse)

	// A failure half-way, after the lease and the bridge: the namespace
	// already has an eth0. Connect undoes everything.
	clash := e.newContainer()
	ns, err := netns.GetFromPid(clash.pid)
	require.NoError(t, err)
	in, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	require.NoError(t, err)
	require.NoError(t, in.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth0"}, PeerName: "eth1"}))
	in.Close()
	ns.Close()
	_, err = e.m.Connect(net2.Name, clash.id, "clash", clash.pid, nil)
	assert.Error(t, err)
	assert.Empty(t, e.leaseFiles(net2.Name), "lease released")
	ok, err := linkExists(vethName(clash.id))
	require.NoError(t, err)
	assert.False(t, ok, "the veth pair removed")
	// (The network's bridge stays, as after any container: assertIdle.)

	// Removing a network in use, or the default one.
	e.connect(ctr, net2.Name, "x")
	err = e.m.Remove(net2.Name, false)
	assert.ErrorIs(t, err, ErrInUse)
	assert.Contains(t, err.Error(), ctr.id)
	assert.ErrorIs(t, e.m.Remove(DefaultNetwork, false), ErrInUse)
	_, err = e.m.Connect(DefaultNetwork, ctr.id, "x", ctr.pid, nil)
	assert.ErrorIs(t, err, ErrExists, "one network per container")
	require.NoError(t, e.m.Disconnect(ctr.ep))
	require.NoError(t, e.m.Remove(net2.Name, false))
	_, err = e.m.Get(net2.Name)
	assert.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, e.m.Disconnect(first.ep))
	e.assertIdle()
}

// Prune disconnects endpoints whose container died without Disconnect.
func TestPrune(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.245.0/24")
	live, dead := e.newContainer(), e.newContainer()
	e.connect(live, "", "live", Port{HostPort: freePort(t), ContainerPort: 80, Proto: "tcp"})
	e.connect(dead, "", "dead", Port{HostPort: freePort(t), ContainerPort: 80, Proto: "tcp"})
	p, err := os.FindProcess(dead.pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
	_, _ = p.Wait()

	require.NoError(t, e.m.Prune())
	hosts, err := e.m.Hosts("")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"live": live.ep.IP}, hosts)
	assert.Zero(t, e.rulesTagged(containerTag(dead.id)))
	assert.Equal(t, 2, e.rulesTagged(containerTag(live.id)))
	require.NoError(t, e.m.Disconnect(dead.ep), "Disconnect after Prune is fine")
	require.NoError(t, e.m.Disconnect(live.ep))
	e.assertIdle()
}

// A dead holder's lease is freed by the next Connect, which gets its
// address; DisconnectContainer finds an endpoint by its lease alone.
func TestDeadLeaseReclaimedAndDisconnectContainer(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.246.0/24")
	dead, next, other := e.newContainer(), e.newContainer(), e.newContainer()
	e.connect(dead, "", "dead", Port{HostPort: freePort(t), ContainerPort: 80, Proto: "tcp"})
	p, err := os.FindProcess(dead.pid)
	require.NoError(t, err)
	require.NoError(t, p.Kill())
	_, _ = p.Wait()

	e.connect(next, "", "next")
	assert.Equal(t, dead.ep.IP, next.ep.IP, "the dead lease's address is free again")
	assert.Zero(t, e.rulesTagged(containerTag(dead.id)), "and its port rules are gone")

	e.connect(other, "", "other")
	require.NoError(t, e.m.DisconnectContainer(other.id))
	hosts, err := e.m.Hosts("")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"next": next.ep.IP}, hosts)
	assert.False(t, celltest.HostLink(vethName(other.id)))
	require.NoError(t, e.m.DisconnectContainer(other.id), "twice is fine")
	require.NoError(t, e.m.Disconnect(next.ep))
	e.assertIdle()
}

// A neighbour on the LAN, with a route to the containers' subnet through
// this host, reaches only what was published: not a port the container
// did not publish (which it did before the forward chain dropped new
// traffic into the bridges), and not a port published on 127.0.0.1
// (sent to the host with destination 127.0.0.1, which DNAT rewrites
// before the kernel's martian check; the guard chain drops it first,
// though on the kernels tried here the kernel refused it on its own too).
// "The neighbour" is a namespace of the test's on 10.77.251.0/30, as in
// TestOutboundNAT.
func TestNeighbour(t *testing.T) {
	celltest.RequirePriv(t)
	e := newEnv(t, "10.77.230.0/24")
	outside := startNetns(t)
	hostEnd := fmt.Sprintf("gtn%d", os.Getpid()%100000)
	e.links = append(e.links, hostEnd)
	makeOutside(t, outside, hostEnd)

	ctr := e.newContainer()
	public, local := freePort(t), freePort(t)
	ep := e.connect(ctr, "", "ctr", Port{HostPort: public, ContainerPort: 80, Proto: "tcp"},
		Port{HostIP: "127.0.0.1", HostPort: local, ContainerPort: 82, Proto: "tcp"})
	for _, port := range []int{80, 81, 82} {
		serve(t, ctr.pid, port, fmt.Sprintf("port %d", port))
	}
	// The neighbour routes the subnet, and 127.0.0.1, to the host.
	require.NoError(t, inNetns(outside, func() error {
		h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
		if err != nil {
			return err
		}
		defer h.Close()
		gw := net.ParseIP("10.77.251.1")
		_, subnet, _ := net.ParseCIDR("10.77.230.0/24")
		if err := h.RouteAdd(&netlink.Route{Dst: subnet, Gw: gw}); err != nil {
			return err
		}
		eth0, err := h.LinkByName("eth0")
		if err != nil {
			return err
		}
		// Let 127.0.0.1 leave through eth0: no local route for it, and
		// route_localnet on eth0.
		lo, _ := h.LinkByName("lo")
		_, loop, _ := net.ParseCIDR("127.0.0.0/8")
		if err := h.RouteDel(&netlink.Route{Dst: loop, LinkIndex: lo.Attrs().Index, Table: unix.RT_TABLE_LOCAL,
			Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST}); err != nil {
			return fmt.Errorf("del 127/8: %w", err)
		}
		_, one0, _ := net.ParseCIDR("127.0.0.1/32")
		if err := h.RouteDel(&netlink.Route{Dst: one0, LinkIndex: lo.Attrs().Index, Table: unix.RT_TABLE_LOCAL,
			Type: unix.RTN_LOCAL, Scope: netlink.SCOPE_HOST}); err != nil {
			return fmt.Errorf("del 127.0.0.1: %w", err)
		}
		for _, dev := range []string{"all", "eth0"} {
			err := os.WriteFile("/proc/sys/net/ipv4/conf/"+dev+"/route_localnet", []byte("1"), 0o644)
			if err != nil {
				return err
			}
		}
		_, one, _ := net.ParseCIDR("127.0.0.1/32")
		return h.RouteAdd(&netlink.Route{Dst: one, Gw: gw, LinkIndex: eth0.Attrs().Index, Src: net.ParseIP("10.77.251.2")})
	}))

	line, err := dial(outside, fmt.Sprintf("10.77.251.1:%d", public))
	require.NoError(t, err, "the neighbour reaches the published port")
	assert.Contains(t, line, "hello from port 80")
	line, err = dial(outside, ep.IP+":80")
	assert.Error(t, err, "nor the container's own address on a published port, directly: %s", line)
	line, err = dial(outside, ep.IP+":81")
	assert.Error(t, err, "the neighbour reached an unpublished port: %s", line)
	line, err = dial(outside, fmt.Sprintf("127.0.0.1:%d", local))
	t.Logf("127.0.0.1 from the neighbour: %v", err)
	assert.Error(t, err, "the neighbour reached a port published on 127.0.0.1: %s", line)
	line, err = dial(0, fmt.Sprintf("127.0.0.1:%d", local))
	require.NoError(t, err, "the host itself still does")
	assert.Contains(t, line, "hello from port 82")
	require.NoError(t, e.m.Disconnect(ep))
}
