package network

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/gocell/gocell/final/internal/names"
)

// Endpoint is one container's place on a network: what Connect made and
// Disconnect removes. The container package stores it in the container's
// state, so that it can disconnect after a crash too.
type Endpoint struct {
	Network     string `json:"network"`
	ContainerID string `json:"containerID"`
	Name        string `json:"name,omitempty"` // the container's name, for Hosts
	IP          string `json:"ip"`             // 10.77.0.2
	Gateway     string `json:"gateway"`        // 10.77.0.1
	HostVeth    string `json:"hostVeth"`       // the host's end of the veth pair
	Ports       []Port `json:"ports,omitempty"`
}

// validID says whether id is a container id: lower-case hex, as the
// container package makes them (64 digits); 12 are enough to name the
// veth after it.
func validID(id string) bool { return names.HexID(id, 12, 64) }

// validContainerName says whether name is a container name as the
// container package allows it; it goes into /etc/hosts.
func validContainerName(name string) bool {
	return names.Valid(name, names.MaxContainer)
}

// vethName names the host's end of a container's veth pair after the
// container: "veth" and 11 digits of its id, the 15 characters IFNAMSIZ
// allows.
func vethName(containerID string) string {
	return "veth" + containerID[:11]
}

// Connect puts the container whose init has host pid pid, already in a new
// network namespace, on a network. In order: it checks the arguments and
// that the ports are free; leases an address; makes sure of IPv4
// forwarding, the nftables table and the network's bridge and NAT rules;
// creates the veth pair with its peer as eth0 in the container; gives eth0
// the address, brings lo and eth0 up and routes via the gateway; and
// publishes the ports. On any error it undoes what it made, through the
// same code as Disconnect, except forwarding (see the package comment).
// A container is on at most one network, since its end is always eth0.
//
// network "" means the default network; name may be "" (no /etc/hosts
// entry); ports come from ParsePort.
func (m *Manager) Connect(network, containerID, name string, pid int, ports []Port) (*Endpoint, error) {
	if network == "" {
		network = DefaultNetwork
	}
	fail := func(err error) (*Endpoint, error) {
		return nil, fmt.Errorf("connect container %.12s to network %s: %w", containerID, network, err)
	}
	ports = normalizePorts(ports)
	if err := checkConnectArgs(containerID, name, pid, ports); err != nil {
		return fail(err)
	}
	var ep *Endpoint
	err := m.locked(func() error {
		n, err := m.network(network)
		if err != nil {
			return err
		}
		if err := m.checkPorts(containerID, ports); err != nil {
			return err
		}
		ep = &Endpoint{
			Network:     n.Name,
			ContainerID: containerID,
			Name:        name,
			Gateway:     n.Gateway,
			HostVeth:    vethName(containerID),
			Ports:       ports,
		}
		if _, err := m.allocate(n, ep, pid); err != nil {
			return err
		}
		if err := m.plug(n, ep, pid); err != nil {
			if cerr := m.disconnect(ep); cerr != nil {
				err = fmt.Errorf("%w (and undoing it: %v)", err, cerr)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fail(err)
	}
	return ep, nil
}

// checkConnectArgs checks what Connect can check before it touches
// anything.
func checkConnectArgs(containerID, name string, pid int, ports []Port) error {
	if !validID(containerID) {
		return fmt.Errorf("container id %q: want 12 to 64 lower-case hex digits: %w", containerID, ErrInvalid)
	}
	if name != "" && !validContainerName(name) {
		return fmt.Errorf("container name %q: %w", name, ErrInvalid)
	}
	if pid <= 0 || startTime(pid) == 0 {
		return fmt.Errorf("pid %d: no such process: %w", pid, ErrInvalid)
	}
	// A pid in our own network namespace would get its eth0 made, and
	// its routes changed, on the host.
	if same, err := sameNetns(pid); err != nil || same {
		return fmt.Errorf("pid %d is not in a network namespace of its own "+
			"(clone it with CLONE_NEWNET): %w", pid, errors.Join(ErrInvalid, err))
	}
	for i, p := range ports {
		if err := p.validate(); err != nil {
			return err
		}
		for _, q := range ports[:i] {
			if p.conflicts(q) {
				return fmt.Errorf("ports %s and %s: %w", q, p, ErrPortInUse)
			}
		}
	}
	return nil
}

// checkPorts refuses a container that is already connected, and ports
// that another endpoint publishes or that a program on the host uses.
// Call it with the lock held.
func (m *Manager) checkPorts(containerID string, ports []Port) error {
	leases, err := m.allLeases()
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.ContainerID == containerID {
			return fmt.Errorf("container is already connected to network %s as %s: %w",
				l.Network, l.IP, ErrExists)
		}
		for _, q := range l.Ports {
			for _, p := range ports {
				if p.conflicts(q) {
					return fmt.Errorf("publish %s: container %.12s publishes %s: %w",
						p, l.ContainerID, q, ErrPortInUse)
				}
			}
		}
	}
	for _, p := range ports {
		if err := checkPortFree(p); err != nil {
			return err
		}
	}
	return nil
}

// plug does the kernel's part of Connect for an endpoint with a lease.
// Call it with the lock held.
func (m *Manager) plug(n *Network, ep *Endpoint, pid int) error {
	if err := m.enableForwarding(); err != nil {
		return err
	}
	t, err := m.newNFT()
	if err != nil {
		return err
	}
	if err := t.ensureTable(); err != nil {
		return err
	}
	if _, err := os.Stat(m.ipForwardRecord()); err == nil {
		if err := t.blockHostRouting(); err != nil {
			return err
		}
	}
	if err := ensureBridge(n); err != nil {
		return err
	}
	if err := t.addNetwork(n); err != nil {
		return err
	}
	if err := addVeth(ep, n.Bridge, pid); err != nil {
		return err
	}
	ip := &net.IPNet{IP: net.ParseIP(ep.IP).To4(), Mask: n.ipnet().Mask}
	if err := configureInside(pid, ip, net.ParseIP(n.Gateway).To4()); err != nil {
		return err
	}
	if len(ep.Ports) > 0 {
		return t.addPorts(ep)
	}
	return nil
}

// Disconnect takes an endpoint off its network: it deletes the veth pair
// if it is still there (the kernel deletes it by itself when the
// container's network namespace goes, but a moment later), removes the
// endpoint's port rules and releases its lease. The network's bridge and
// its firewall rules stay for the next container, as docker0 does:
// making and removing a bridge around every container cost about 60 ms
// each time (unregistering a network device waits for RCU grace
// periods). Prune, network rm and Reset remove them. It is idempotent:
// calling it twice, or after Prune or Reset, is fine.
func (m *Manager) Disconnect(ep *Endpoint) error {
	if ep == nil {
		return nil
	}
	err := m.locked(func() error { return m.disconnect(ep) })
	if err != nil {
		return fmt.Errorf("disconnect container %.12s from network %s: %w", ep.ContainerID, ep.Network, err)
	}
	return nil
}

// DisconnectContainer disconnects every endpoint whose lease names the
// container id. After a crash between Connect and the caller's record of
// the endpoint it returned, the lease is all that is left to find it by.
// Like Disconnect, it is idempotent.
func (m *Manager) DisconnectContainer(id string) error {
	if !validID(id) {
		return nil
	}
	err := m.locked(func() error {
		leases, err := m.allLeases()
		if err != nil {
			return err
		}
		var errs []error
		for _, l := range leases {
			if l.ContainerID == id {
				errs = append(errs, m.disconnect(&l.Endpoint))
			}
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("disconnect container %.12s: %w", id, err)
	}
	return nil
}

// disconnect is Disconnect with the lock held. It does every step even
// when one fails, and reports all failures.
// Equivalent to:
//
//	ip link del vethID
//	nft delete rule ip gocell CHAIN handle H   # for each "ctr:ID" rule
//	rm leases/NET/IP
func (m *Manager) disconnect(ep *Endpoint) error {
	var errs []error
	if checkIfname(ep.HostVeth) == nil {
		errs = append(errs, deleteLink(ep.HostVeth))
	}
	if validID(ep.ContainerID) {
		t, err := m.newNFT()
		if err == nil {
			err = t.removePorts(ep.ContainerID)
		}
		errs = append(errs, err)
	}
	errs = append(errs, m.release(ep))
	return errors.Join(errs...)
}

// removeBridgeIfUnused removes a network's kernel bridge when it has no
// leases. Call it with the lock held.
func (m *Manager) removeBridgeIfUnused(n *Network) error {
	leases, err := m.leases(n.Name)
	if err != nil || len(leases) > 0 {
		return err
	}
	return m.removeBridge(n)
}

// removeBridge removes a network's kernel bridge and its nftables rules,
// and the whole table once no gocell bridge is left. Call it with the
// lock held. Equivalent to:
//
//	nft delete element ip gocell bridges { BRIDGE }   # and "net:NAME" rules
//	ip link del BRIDGE
//	nft delete table ip gocell                        # if bridges is empty
func (m *Manager) removeBridge(n *Network) error {
	t, err := m.newNFT()
	if err != nil {
		return err
	}
	if err := t.removeNetwork(n); err != nil {
		return err
	}
	if err := deleteLink(n.Bridge); err != nil {
		return err
	}
	return t.deleteIfUnused()
}

// Hosts returns the name and address of every named container on a
// network, for /etc/hosts.
func (m *Manager) Hosts(network string) (map[string]string, error) {
	hosts := map[string]string{}
	err := m.locked(func() error {
		n, err := m.network(network)
		if err != nil {
			return err
		}
		leases, err := m.leases(n.Name)
		if err != nil {
			return err
		}
		for _, l := range leases {
			if l.Name != "" {
				hosts[l.Name] = l.IP
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hosts of network %s: %w", network, err)
	}
	return hosts, nil
}

// Prune disconnects every endpoint whose holder (the container's process)
// has died, as after a crash of its monitor, and removes the kernel
// bridges that no endpoint uses, the default network's included, which
// Disconnect keeps for the next container. Networks' configurations stay.
func (m *Manager) Prune() error {
	err := m.locked(func() error {
		leases, err := m.allLeases()
		if err != nil {
			return err
		}
		var errs []error
		for _, l := range leases {
			if !l.alive() {
				errs = append(errs, m.disconnect(&l.Endpoint))
			}
		}
		nets, err := m.allNetworks()
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, n := range nets {
			errs = append(errs, m.removeBridgeIfUnused(n))
		}
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("prune networks: %w", err)
	}
	return nil
}

// Reset removes everything gocell made: every endpoint's veth, every
// bridge, the nftables table, the leases and the networks file, and
// writes back IPv4 forwarding if gocell switched it on. It keeps going
// when a step fails and reports all failures. The lock file stays:
// removing a file that others may be waiting to lock would let two of
// them hold "the" lock at once.
// Equivalent to: ip link del ...; nft delete table ip gocell; rm -r STATEDIR/*
func (m *Manager) Reset() error {
	err := m.locked(func() error {
		var errs []error
		leases, err := m.allLeases()
		errs = append(errs, err)
		for _, l := range leases {
			if checkIfname(l.HostVeth) == nil {
				errs = append(errs, deleteLink(l.HostVeth))
			}
		}
		nets, err := m.allNetworks()
		errs = append(errs, err)
		for _, n := range nets {
			errs = append(errs, deleteLink(n.Bridge))
		}
		if t, err := m.newNFT(); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, t.deleteTable())
		}
		errs = append(errs, m.restoreForwarding())
		errs = append(errs, os.RemoveAll(m.leasesRoot()), os.RemoveAll(m.networksFile()))
		return errors.Join(errs...)
	})
	if err != nil {
		return fmt.Errorf("reset networks: %w", err)
	}
	return nil
}
