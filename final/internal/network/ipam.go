package network

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/gocell/gocell/final/internal/persist"
)

// lease is one leased address: the file StateDir/leases/NET/IP. It holds
// the whole Endpoint, so that Hosts, port checks and Prune need nothing
// else, and the holder — the container's init, whose network namespace
// the address lives in — with its start time, so that Prune can tell a
// dead holder from a live one even after its pid has been reused.
//
// Leases are files, not held flocks as in 05-net, because the process that
// calls Connect is not the one that lives as long as the endpoint: after a
// crash, the container package disconnects an endpoint from its state.
type lease struct {
	Endpoint
	Pid      int    `json:"pid"`
	PidStart uint64 `json:"pidStart"` // field 22 of /proc/PID/stat
}

// leasesRoot is the directory of all leases, one subdirectory a network.
func (m *Manager) leasesRoot() string {
	return filepath.Join(m.opts.StateDir, "leases")
}

// leaseDir is the directory of one network's leases.
func (m *Manager) leaseDir(network string) string {
	return filepath.Join(m.leasesRoot(), network)
}

// leases reads every lease of a network, sorted by address. Call it with
// the lock held. A lease that cannot be read still blocks its address
// (it comes back with only its IP set): a damaged file must never let an
// address be handed out twice.
func (m *Manager) leases(network string) ([]*lease, error) {
	entries, err := os.ReadDir(m.leaseDir(network))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	var out []*lease
	for _, e := range entries {
		if net.ParseIP(e.Name()) == nil {
			continue // a temporary file of writeFileAtomic
		}
		l := &lease{}
		data, err := os.ReadFile(filepath.Join(m.leaseDir(network), e.Name()))
		if err != nil || json.Unmarshal(data, l) != nil {
			l = &lease{}
		}
		l.IP = e.Name()
		l.Network = network
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool {
		return bytes.Compare(net.ParseIP(out[i].IP), net.ParseIP(out[j].IP)) < 0
	})
	return out, nil
}

// allLeases reads the leases of every network. Call it with the lock held.
func (m *Manager) allLeases() ([]*lease, error) {
	nets, err := m.allNetworks()
	if err != nil {
		return nil, err
	}
	var out []*lease
	for _, n := range nets {
		ls, err := m.leases(n.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, ls...)
	}
	return out, nil
}

// allocate leases the lowest free address of a network to ep and fills in
// ep.IP. .0 is the network, .1 the gateway and the last address the
// broadcast. Call it with the lock held: the lock, not the file system,
// is what makes two allocations never return the same address; O_EXCL in
// writeLease is a second line of defence.
func (m *Manager) allocate(n *Network, ep *Endpoint, pid int) (*lease, error) {
	taken, err := m.leases(n.Name)
	if err != nil {
		return nil, err
	}
	used := map[string]bool{}
	for _, l := range taken {
		// A lease whose holder has died (its monitor was killed before
		// it could disconnect) is freed here, on the next start. Not a
		// damaged one (no holder read from it): that blocks its address.
		if l.Pid > 0 && !l.alive() && m.disconnect(&l.Endpoint) == nil {
			continue
		}
		used[l.IP] = true
	}
	ipn := n.ipnet()
	ones, bits := ipn.Mask.Size()
	size := uint32(1) << (bits - ones)
	for i := uint32(2); i < size-1; i++ {
		ip := nthAddress(ipn, i).String()
		if used[ip] {
			continue
		}
		ep.IP = ip
		l := &lease{Endpoint: *ep, Pid: pid, PidStart: startTime(pid)}
		if err := m.writeLease(l); err != nil {
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("network %s (%s) has all %d addresses leased: %w",
		n.Name, n.Subnet, size-3, ErrNoAddress)
}

// leasePath is the file of one lease.
func (m *Manager) leasePath(network, ip string) string {
	return filepath.Join(m.leaseDir(network), ip)
}

// writeLease creates a lease file that must not exist yet.
func (m *Manager) writeLease(l *lease) error {
	if err := os.MkdirAll(m.leaseDir(l.Network), 0o700); err != nil {
		return fmt.Errorf("lease %s: %w", l.IP, err)
	}
	data, err := json.MarshalIndent(l, "", "\t")
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.IP, err)
	}
	path := m.leasePath(l.Network, l.IP)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("lease %s: %w", l.IP, err)
	}
	_, err = f.Write(append(data, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("lease %s: %w", l.IP, err)
	}
	return nil
}

// release removes the lease of ep's address, but only if it still belongs
// to ep's container: after a crash the address may have gone to another
// container since, and its lease must stay. Call it with the lock held.
func (m *Manager) release(ep *Endpoint) error {
	if ep.IP == "" || net.ParseIP(ep.IP) == nil || !validName(ep.Network) {
		return nil // nothing was leased, or the endpoint is not ours
	}
	path := m.leasePath(ep.Network, ep.IP)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("release %s: %w", ep.IP, err)
	}
	var l lease
	if json.Unmarshal(data, &l) == nil && l.ContainerID != ep.ContainerID {
		return nil
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("release %s: %w", ep.IP, err)
	}
	return nil
}

// alive tells whether a lease's holder is still the process that took it:
// its pid exists and started when it did then.
func (l *lease) alive() bool {
	return l.Pid > 0 && l.PidStart != 0 && startTime(l.Pid) == l.PidStart
}

// startTime is persist.StartTime, 0 for a process that is not there.
func startTime(pid int) uint64 {
	st, err := persist.StartTime(pid)
	if err != nil {
		return 0
	}
	return st
}

// Rename gives ep's lease the container's new name, so that containers
// started after it find it by that name in their /etc/hosts (Hosts). The
// /etc/hosts of those running keep what they were given at their start.
func (m *Manager) Rename(ep *Endpoint, name string) error {
	if !validContainerName(name) || ep.IP == "" || net.ParseIP(ep.IP) == nil || !validName(ep.Network) {
		return fmt.Errorf("rename %s: %w", ep.IP, ErrNotFound)
	}
	return m.locked(func() error {
		path := m.leasePath(ep.Network, ep.IP)
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("rename %s: %w", ep.IP, err)
		}
		var l lease
		if err := json.Unmarshal(data, &l); err != nil || l.ContainerID != ep.ContainerID {
			return fmt.Errorf("rename %s: the lease is not %s's", ep.IP, ep.ContainerID)
		}
		l.Name = name
		out, err := json.MarshalIndent(&l, "", "\t")
		if err != nil {
			return err
		}
		return persist.WriteFile(path, append(out, '\n'), 0o600, true)
	})
}
