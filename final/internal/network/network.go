package network

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"

	"github.com/gocell/gocell/final/internal/names"
	"github.com/gocell/gocell/final/internal/persist"
)

// The errors callers tell apart with errors.Is. Every error this package
// returns wraps one of them when it is the caller's doing, and says what
// to do about it.
var (
	// ErrInvalid: a malformed name, subnet, port or id.
	ErrInvalid = errors.New("invalid argument")
	// ErrNotFound: no such network.
	ErrNotFound = errors.New("not found")
	// ErrExists: a network, or a link that would be its bridge, exists.
	ErrExists = errors.New("already exists")
	// ErrOverlap: a subnet overlaps one of the host or another network.
	ErrOverlap = errors.New("subnet overlaps")
	// ErrInUse: a network still has endpoints, or is the default.
	ErrInUse = errors.New("in use")
	// ErrPortInUse: a host port is taken by a program or another container.
	ErrPortInUse = errors.New("port already in use")
	// ErrNoAddress: every address of a network is leased.
	ErrNoAddress = errors.New("no free address")
)

// DefaultNetwork is the name of the network that always exists.
const DefaultNetwork = "bridge"

// Defaults for the Options left empty.
const (
	defaultSubnet = "10.77.0.0/24"
	defaultBridge = "gocell0"
	defaultTable  = "gocell"
)

// Options configure a Manager. Only StateDir is required.
type Options struct {
	// StateDir holds the networks file, the leases and the lock, e.g.
	// <root>/network.
	StateDir string
	// DefaultSubnet is the subnet of the network "bridge" (10.77.0.0/24).
	DefaultSubnet string
	// DefaultBridge is the kernel bridge of the network "bridge" (gocell0).
	DefaultBridge string
	// Table is the nftables table, of the ip family, that holds all of
	// gocell's rules ("gocell"). Tests set one of their own.
	Table string
}

// Network is a named IPv4 subnet with a bridge as its switch. The bridge
// holds the gateway address, the subnet's first.
type Network struct {
	Name    string `json:"name"`
	Bridge  string `json:"bridge"`
	Subnet  string `json:"subnet"`  // 10.77.0.0/24
	Gateway string `json:"gateway"` // 10.77.0.1
}

// ipnet parses the network's subnet. Open, Create and readNetworks have
// validated it; should it still not parse, the result is 0.0.0.0/32,
// which no container address is in.
func (n *Network) ipnet() *net.IPNet {
	_, ipn, err := net.ParseCIDR(n.Subnet)
	if err != nil {
		return &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(32, 32)}
	}
	return ipn
}

// gatewayNet is the gateway with the subnet's mask, as the bridge holds it:
// 10.77.0.1/24.
func (n *Network) gatewayNet() *net.IPNet {
	return &net.IPNet{IP: net.ParseIP(n.Gateway).To4(), Mask: n.ipnet().Mask}
}

// Manager does all of the package's work. It keeps no state in memory
// beyond its options: everything lives in StateDir and in the kernel, so
// any number of Managers, in any number of processes, may share a
// StateDir.
type Manager struct {
	opts Options
	def  *Network // the default network
}

// Open checks the options and returns a Manager. It changes nothing: the
// default network exists in its configuration from the start, and its
// kernel bridge appears with its first endpoint.
func Open(o Options) (*Manager, error) {
	if o.StateDir == "" {
		return nil, fmt.Errorf("network: no state directory: %w", ErrInvalid)
	}
	if o.DefaultSubnet == "" {
		o.DefaultSubnet = defaultSubnet
	}
	if o.DefaultBridge == "" {
		o.DefaultBridge = defaultBridge
	}
	if o.Table == "" {
		o.Table = defaultTable
	}
	if err := checkIfname(o.DefaultBridge); err != nil {
		return nil, fmt.Errorf("network: default bridge: %w", err)
	}
	def, err := newNetwork(DefaultNetwork, o.DefaultSubnet, o.DefaultBridge)
	if err != nil {
		return nil, fmt.Errorf("network: default subnet: %w", err)
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return &Manager{opts: o, def: def}, nil
}

// validName says whether name can name a network: the same rule as for
// container names, so no name can escape StateDir or confuse a path.
func validName(name string) bool { return names.Valid(name, names.MaxNetwork) }

// checkIfname refuses a link name the kernel would refuse: IFNAMSIZ is
// 16 with the terminating NUL, and '/', ':' and white space are not
// allowed.
func checkIfname(name string) error {
	if !names.Valid(name, names.MaxLink) {
		return fmt.Errorf("%q is not a usable interface name (%s): %w",
			name, names.Rule(names.MaxLink), ErrInvalid)
	}
	return nil
}

// bridgeFor names the kernel bridge of a network made with Create:
// "gc-NAME" when that fits in IFNAMSIZ, otherwise "gc-" and the first 12
// hex digits of the name's SHA-256.
func bridgeFor(name string) string {
	if b := "gc-" + name; names.Valid(b, names.MaxLink) {
		return b
	}
	sum := sha256.Sum256([]byte(name))
	return "gc-" + hex.EncodeToString(sum[:])[:12]
}

// newNetwork validates a name and a subnet and fills in the gateway.
// A subnet must be IPv4, given by its network address (10.77.9.0/24, not
// 10.77.9.5/24: the host part is probably a typo), and leave room for the
// gateway and at least one container: /8 to /29.
func newNetwork(name, subnet, bridge string) (*Network, error) {
	if !validName(name) {
		return nil, fmt.Errorf("network name %q: %s: %w",
			name, names.Rule(names.MaxNetwork), ErrInvalid)
	}
	ip, ipn, err := net.ParseCIDR(subnet)
	if err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("subnet %q: not an IPv4 network in CIDR "+
			"notation such as 10.77.9.0/24: %w", subnet, ErrInvalid)
	}
	if !ip.Equal(ipn.IP) {
		return nil, fmt.Errorf("subnet %q has host bits set; did you mean %s? %w",
			subnet, ipn, ErrInvalid)
	}
	if ones, _ := ipn.Mask.Size(); ones < 8 || ones > 29 {
		return nil, fmt.Errorf("subnet %s: the prefix length must be between "+
			"8 and 29: %w", subnet, ErrInvalid)
	}
	return &Network{
		Name:    name,
		Bridge:  bridge,
		Subnet:  ipn.String(),
		Gateway: nthAddress(ipn, 1).String(),
	}, nil
}

// Create adds a network with its own subnet and bridge. It refuses a bad
// name or CIDR (ErrInvalid), a name or bridge name that exists (ErrExists),
// and a subnet that overlaps another gocell network or any address or
// route of the host (ErrOverlap): containers there could not reach, or
// would hide, the host's own neighbours. The kernel bridge appears with
// the network's first endpoint.
// Equivalent to: docker network create --subnet SUBNET NAME
func (m *Manager) Create(name, subnet string) (*Network, error) {
	n, err := newNetwork(name, subnet, bridgeFor(name))
	if err != nil {
		return nil, fmt.Errorf("create network: %w", err)
	}
	err = m.locked(func() error {
		nets, err := m.readNetworks()
		if err != nil {
			return err
		}
		for _, o := range append(nets, m.def) {
			if o.Name == n.Name {
				return fmt.Errorf("network %q: %w", n.Name, ErrExists)
			}
			if o.Bridge == n.Bridge {
				return fmt.Errorf("bridge %s of network %q: %w", n.Bridge, o.Name, ErrExists)
			}
			if overlaps(n.ipnet(), o.ipnet()) {
				return fmt.Errorf("subnet %s and network %q's %s: %w",
					n.Subnet, o.Name, o.Subnet, ErrOverlap)
			}
		}
		if err := checkHostOverlap(n); err != nil {
			return err
		}
		return m.writeNetworks(append(nets, n))
	})
	if err != nil {
		return nil, fmt.Errorf("create network %s: %w", name, err)
	}
	return n, nil
}

// List returns every network, the default one first, then by name.
// Equivalent to: docker network ls
func (m *Manager) List() ([]*Network, error) {
	var nets []*Network
	err := m.locked(func() error {
		var err error
		nets, err = m.readNetworks()
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	return append([]*Network{m.def}, nets...), nil
}

// Get returns one network, or ErrNotFound.
func (m *Manager) Get(name string) (*Network, error) {
	var n *Network
	err := m.locked(func() error {
		var err error
		n, err = m.network(name)
		return err
	})
	if err != nil {
		return nil, err
	}
	return n, nil
}

// Remove deletes a network made with Create, with its bridge and rules.
// It refuses the default network, and a network that has endpoints (its
// leases) or that the caller says is in use (inUse: containers, even
// stopped ones, configured to join it): ErrInUse. Equivalent to:
// docker network rm NAME
func (m *Manager) Remove(name string, inUse bool) error {
	err := m.locked(func() error {
		if name == DefaultNetwork {
			return fmt.Errorf("it is the default network, which always exists: %w", ErrInUse)
		}
		n, err := m.network(name)
		if err != nil {
			return err
		}
		if inUse {
			return fmt.Errorf("containers are configured to use it: %w", ErrInUse)
		}
		leases, err := m.leases(n.Name)
		if err != nil {
			return err
		}
		if len(leases) > 0 {
			return fmt.Errorf("%d endpoints are connected, such as container %s: %w",
				len(leases), leases[0].ContainerID, ErrInUse)
		}
		if err := m.removeBridge(n); err != nil {
			return err
		}
		if err := os.RemoveAll(m.leaseDir(n.Name)); err != nil {
			return err
		}
		nets, err := m.readNetworks()
		if err != nil {
			return err
		}
		kept := nets[:0]
		for _, o := range nets {
			if o.Name != n.Name {
				kept = append(kept, o)
			}
		}
		return m.writeNetworks(kept)
	})
	if err != nil {
		return fmt.Errorf("remove network %s: %w", name, err)
	}
	return nil
}

// network finds a network by name. Call it with the lock held.
func (m *Manager) network(name string) (*Network, error) {
	if name == DefaultNetwork || name == "" {
		return m.def, nil
	}
	nets, err := m.readNetworks()
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		if n.Name == name {
			return n, nil
		}
	}
	return nil, fmt.Errorf("network %q: %w", name, ErrNotFound)
}

// networksFile is StateDir/networks.json: the networks made with Create.
func (m *Manager) networksFile() string {
	return filepath.Join(m.opts.StateDir, "networks.json")
}

// readNetworks reads the networks file; a missing file means none.
func (m *Manager) readNetworks() ([]*Network, error) {
	data, err := os.ReadFile(m.networksFile())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var nets []*Network
	if err := json.Unmarshal(data, &nets); err != nil {
		return nil, fmt.Errorf("%s: %w", m.networksFile(), err)
	}
	// Check what Create checked, in case of a hand-edited file: the rest of
	// the package relies on valid names, subnets and bridge names.
	for i, n := range nets {
		valid, err := newNetwork(n.Name, n.Subnet, n.Bridge)
		if err == nil {
			err = checkIfname(n.Bridge)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.networksFile(), err)
		}
		nets[i] = valid
	}
	return nets, nil
}

// writeNetworks replaces the networks file, sorted by name.
func (m *Manager) writeNetworks(nets []*Network) error {
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	if nets == nil {
		nets = []*Network{}
	}
	data, err := json.MarshalIndent(nets, "", "\t")
	if err != nil {
		return err
	}
	return persist.WriteFile(m.networksFile(), append(data, '\n'), 0o600, true)
}

// allNetworks is the default network and every network made with Create.
// Call it with the lock held.
func (m *Manager) allNetworks() ([]*Network, error) {
	nets, err := m.readNetworks()
	if err != nil {
		return nil, err
	}
	return append([]*Network{m.def}, nets...), nil
}

// overlaps tells whether two networks share any address.
func overlaps(a, b *net.IPNet) bool {
	return a.Contains(b.IP) || b.Contains(a.IP)
}

// nthAddress is the n-th address of a network: 10.77.0.0/24 and 2 give
// 10.77.0.2.
func nthAddress(ipn *net.IPNet, n uint32) net.IP {
	base := ipn.IP.To4().Mask(ipn.Mask)
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	v += n
	return net.IPv4(byte(v>>24), byte(v>>16), byte(v>>8), byte(v)).To4()
}
