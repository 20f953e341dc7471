package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/gocell/gocell/final/internal/persist"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// hostHandle opens a netlink handle in the host's network namespace (ours)
// for the NETLINK_ROUTE family only. netlink's package-level functions
// would also open NETLINK_XFRM sockets, which fail on kernels without
// xfrm_user; we need links, addresses and routes, nothing more.
func hostHandle() (*netlink.Handle, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return h, nil
}

// dump runs a netlink dump, asking again while the kernel reports it as
// interrupted: a dump is interrupted when the list changes while it is
// read, which concurrent Connects make happen all the time, and the
// library then returns ErrDumpInterrupted with partial results.
func dump[T any](list func() ([]T, error)) ([]T, error) {
	for try := 1; ; try++ {
		out, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 10 {
			return out, err
		}
	}
}

// isNotFound tells whether a netlink error means "no such link".
func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV)
}

// checkHostOverlap refuses a network whose subnet overlaps an address or
// a route of the host: the host would then not know which way to send
// some packets. The default route (0.0.0.0/0) overlaps everything and is
// the one route that does not count.
// Equivalent to: ip -4 addr; ip -4 route
func checkHostOverlap(n *Network) error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.LinkByName(n.Bridge); err == nil {
		return fmt.Errorf("a link named %s, the network's bridge, exists: %w", n.Bridge, ErrExists)
	}
	subnet := n.ipnet()
	addrs, err := dump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list the host's addresses: %w", err)
	}
	for _, a := range addrs {
		if overlaps(subnet, a.IPNet) {
			return fmt.Errorf("subnet %s and the host's address %s on %s: %w",
				n.Subnet, a.IPNet, linkName(h, a.LinkIndex), ErrOverlap)
		}
	}
	routes, err := dump(func() ([]netlink.Route, error) { return h.RouteList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return fmt.Errorf("list the host's routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if ones, _ := r.Dst.Mask.Size(); ones == 0 {
			continue
		}
		if overlaps(subnet, r.Dst) {
			return fmt.Errorf("subnet %s and the host's route to %s via %s: %w",
				n.Subnet, r.Dst, linkName(h, r.LinkIndex), ErrOverlap)
		}
	}
	return nil
}

// linkName is a link's name for messages, or its index when unknown.
func linkName(h *netlink.Handle, index int) string {
	if l, err := h.LinkByIndex(index); err == nil {
		return l.Attrs().Name
	}
	return fmt.Sprintf("link %d", index)
}

// ensureBridge makes sure a network's kernel bridge exists, holds the
// gateway address, allows loopback addresses (route_localnet, see the
// package comment) and is up. Each step is idempotent, so a half-made or
// damaged bridge is mended.
// Equivalent to:
//
//	ip link add NAME type bridge
//	ip addr replace 10.77.0.1/24 dev NAME
//	sysctl -w net.ipv4.conf.NAME.route_localnet=1
//	ip link set NAME up
func ensureBridge(n *Network) error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(n.Bridge)
	switch {
	case isNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: n.Bridge}}
		if err := h.LinkAdd(br); err != nil {
			return fmt.Errorf("add bridge %s: %w", n.Bridge, err)
		}
		if link, err = h.LinkByName(n.Bridge); err != nil {
			return fmt.Errorf("find bridge %s: %w", n.Bridge, err)
		}
	case err != nil:
		return fmt.Errorf("find bridge %s: %w", n.Bridge, err)
	case link.Type() != "bridge":
		return fmt.Errorf("link %s exists and is a %s, not a bridge: %w",
			n.Bridge, link.Type(), ErrExists)
	}
	if err := h.AddrReplace(link, &netlink.Addr{IPNet: n.gatewayNet()}); err != nil {
		return fmt.Errorf("add %s to %s: %w", n.gatewayNet(), n.Bridge, err)
	}
	if err := writeSysctl(routeLocalnetPath(n.Bridge), "1"); err != nil {
		return err
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set %s up: %w", n.Bridge, err)
	}
	return nil
}

// routeLocalnetPath is the route_localnet setting of one interface.
func routeLocalnetPath(ifname string) string {
	return filepath.Join("/proc/sys/net/ipv4/conf", ifname, "route_localnet")
}

// deleteLink deletes a link if it exists. Deleting one end of a veth pair
// deletes the other; deleting a bridge frees the links plugged into it.
// Equivalent to: ip link del NAME
func deleteLink(name string) error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	link, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find %s: %w", name, err)
	}
	if err := h.LinkDel(link); err != nil && !isNotFound(err) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// addVeth creates the container's veth pair: ep.HostVeth on the host,
// plugged into the bridge and up, and its peer directly in the network
// namespace of pid, as eth0. Creating the peer in its namespace, rather
// than creating it here and moving it, means no temporary name can clash.
// Equivalent to:
//
//	ip link add vethID master BRIDGE type veth peer name eth0 netns PID
//	ip link set vethID up
func addVeth(ep *Endpoint, bridge string, pid int) error {
	h, err := hostHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	br, err := h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("find bridge %s: %w", bridge, err)
	}
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ep.HostVeth, MasterIndex: br.Attrs().Index},
		PeerName:      "eth0",
		PeerNamespace: netlink.NsPid(pid),
	}
	if err := h.LinkAdd(veth); err != nil {
		return fmt.Errorf("add veth pair %s to pid %d: %w", ep.HostVeth, pid, err)
	}
	if err := h.LinkSetUp(veth); err != nil {
		return fmt.Errorf("set %s up: %w", ep.HostVeth, err)
	}
	return nil
}

// configureInside sets up the container's side through a netlink handle
// opened in its network namespace (the netns library switches a locked
// thread there with setns(2) just to open the socket).
// Equivalent to:
//
//	nsenter --net --target PID sh -c '
//	  ip addr add 10.77.0.2/24 dev eth0
//	  ip link set lo up; ip link set eth0 up
//	  ip route add default via 10.77.0.1'
func configureInside(pid int, ip *net.IPNet, gateway net.IP) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("open the network namespace of pid %d: %w", pid, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in pid %d: %w", pid, err)
	}
	defer h.Close()
	eth0, err := h.LinkByName("eth0")
	if err != nil {
		return fmt.Errorf("find eth0 in pid %d: %w", pid, err)
	}
	if err := h.AddrAdd(eth0, &netlink.Addr{IPNet: ip}); err != nil {
		return fmt.Errorf("add %s to eth0: %w", ip, err)
	}
	// A new network namespace's loopback is down.
	lo, err := h.LinkByName("lo")
	if err != nil {
		return fmt.Errorf("find lo in pid %d: %w", pid, err)
	}
	for _, l := range []netlink.Link{lo, eth0} {
		if err := h.LinkSetUp(l); err != nil {
			return fmt.Errorf("set %s up: %w", l.Attrs().Name, err)
		}
	}
	route := &netlink.Route{LinkIndex: eth0.Attrs().Index, Gw: gateway}
	if err := h.RouteAdd(route); err != nil {
		return fmt.Errorf("add default route via %s: %w", gateway, err)
	}
	return nil
}

// linkExists tells whether a link of that name exists on the host.
func linkExists(name string) (bool, error) {
	h, err := hostHandle()
	if err != nil {
		return false, err
	}
	defer h.Close()
	_, err = h.LinkByName(name)
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}

// sameNetns tells whether pid is in our network namespace: whether
// /proc/PID/ns/net and /proc/self/ns/net are the same inode.
func sameNetns(pid int) (bool, error) {
	var self, other unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &self); err != nil {
		return false, fmt.Errorf("stat /proc/self/ns/net: %w", err)
	}
	path := fmt.Sprintf("/proc/%d/ns/net", pid)
	if err := unix.Stat(path, &other); err != nil {
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	return self.Dev == other.Dev && self.Ino == other.Ino, nil
}

// ipForwardPath is the IPv4 forwarding switch of our network namespace.
const ipForwardPath = "/proc/sys/net/ipv4/ip_forward"

// ipForwardRecord is the file in StateDir that remembers, while it exists,
// that gocell switched forwarding on, and the value it had before.
func (m *Manager) ipForwardRecord() string {
	return filepath.Join(m.opts.StateDir, "ip_forward")
}

// enableForwarding switches IPv4 forwarding on if it is off, and records
// the old value first, so that Reset can restore it. See "Forwarding" in
// the package comment. Call it with the lock held.
// Equivalent to: sysctl -w net.ipv4.ip_forward=1
func (m *Manager) enableForwarding() error {
	old, err := os.ReadFile(ipForwardPath)
	if err != nil {
		return fmt.Errorf("read %s: %w", ipForwardPath, err)
	}
	if strings.TrimSpace(string(old)) == "1" {
		return nil
	}
	if _, err := os.Stat(m.ipForwardRecord()); errors.Is(err, os.ErrNotExist) {
		if err := persist.WriteFile(m.ipForwardRecord(), old, 0o600, true); err != nil {
			return fmt.Errorf("record ip_forward: %w", err)
		}
	}
	return writeSysctl(ipForwardPath, "1")
}

// restoreForwarding writes back the forwarding setting gocell found, if
// gocell changed it. Call it with the lock held.
func (m *Manager) restoreForwarding() error {
	old, err := os.ReadFile(m.ipForwardRecord())
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", m.ipForwardRecord(), err)
	}
	if err := writeSysctl(ipForwardPath, strings.TrimSpace(string(old))); err != nil {
		return err
	}
	return os.Remove(m.ipForwardRecord())
}

// writeSysctl sets a kernel parameter through /proc/sys.
// Equivalent to: sysctl -w KEY=VALUE
func writeSysctl(path, value string) error {
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("sysctl: %w", err)
	}
	return nil
}
