package network

import (
	"fmt"
	"net"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The names inside gocell's table; the package comment shows the whole
// table as nft(8) lists it.
const (
	setBridges       = "bridges"
	chainGuard       = "guard"
	chainPrerouting  = "prerouting"
	chainOutput      = "output"
	chainPostrouting = "postrouting"
	chainForward     = "forward"
)

// Rule tags, stored as the rule's nft comment. Only rules with a tag are
// ever deleted one by one; the untagged ones go with the table.
func containerTag(id string) string { return "ctr:" + id }
func networkTag(name string) string { return "net:" + name }

// forwardTag marks the rule of blockHostRouting.
const forwardTag = "fwd"

// nft is a batch of changes to gocell's table. The nftables library queues
// every change on the Conn and sends them all in one netlink batch at
// Flush, which the kernel applies atomically: all or nothing.
type nft struct {
	conn  *nftables.Conn
	table *nftables.Table
}

// newNFT opens a batch for the Manager's table.
func (m *Manager) newNFT() (*nft, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	return &nft{conn: conn, table: &nftables.Table{Name: m.opts.Table, Family: nftables.TableFamilyIPv4}}, nil
}

// chain is one of the table's chains, by name, for rules to refer to.
func (t *nft) chain(name string) *nftables.Chain {
	return &nftables.Chain{Name: name, Table: t.table}
}

// bridgeSet is the set of gocell's bridge names.
func (t *nft) bridgeSet() *nftables.Set {
	return &nftables.Set{Table: t.table, Name: setBridges, KeyType: nftables.TypeIFName,
		// nft(8) keeps strings in host byte order; without this it
		// lists every name as "".
		KeyByteOrder: binaryutil.NativeEndian}
}

// flush sends the queued changes.
func (t *nft) flush(what string) error {
	if err := t.conn.Flush(); err != nil {
		return fmt.Errorf("nftables: %s: %w", what, err)
	}
	return nil
}

// exists tells whether the table exists.
// Equivalent to: nft list tables ip
func (t *nft) exists() (bool, error) {
	tables, err := t.conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	for _, tb := range tables {
		if tb.Name == t.table.Name {
			return true, nil
		}
	}
	return false, nil
}

// ensureTable creates the table with its set, its chains and the rules
// that do not belong to one network or container, unless it exists.
// Call it with the lock held. Equivalent to: nft -f gocell.nft, with the
// table of the package comment minus the tagged rules.
func (t *nft) ensureTable() error {
	ok, err := t.exists()
	if err != nil || ok {
		return err
	}
	c := t.conn
	c.AddTable(t.table)
	set := t.bridgeSet()
	if err := c.AddSet(set, nil); err != nil {
		return fmt.Errorf("nftables: add set %s: %w", setBridges, err)
	}
	accept := nftables.ChainPolicyAccept
	base := func(name string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return c.AddChain(&nftables.Chain{Name: name, Table: t.table, Type: typ,
			Hooknum: hook, Priority: prio, Policy: &accept})
	}
	guard := base(chainGuard, nftables.ChainTypeFilter, nftables.ChainHookPrerouting, nftables.ChainPriorityRaw)
	base(chainPrerouting, nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	base(chainOutput, nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	post := base(chainPostrouting, nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	fwd := base(chainForward, nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)

	rule := func(ch *nftables.Chain, exprs ...[]expr.Any) {
		c.AddRule(&nftables.Rule{Table: t.table, Chain: ch, Exprs: join(exprs...)})
	}
	// guard: iifname != "lo" ip daddr 127.0.0.0/8 drop
	rule(guard, ifnameIs(expr.MetaKeyIIFNAME, "lo", expr.CmpOpNeq), ipMatch(offDaddr, loopbackNet),
		verdict(expr.VerdictDrop))
	// postrouting: oifname @bridges ip saddr 127.0.0.0/8 masquerade
	rule(post, inSet(expr.MetaKeyOIFNAME, set, false), ipMatch(offSaddr, loopbackNet), masquerade())
	// forward: ct state established,related accept
	rule(fwd, ctBits(expr.CtKeySTATE, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED), verdict(expr.VerdictAccept))
	// forward: ct status dnat accept
	rule(fwd, ctBits(expr.CtKeySTATUS, ipsDstNAT), verdict(expr.VerdictAccept))
	// forward: iifname @bridges oifname @bridges drop
	rule(fwd, inSet(expr.MetaKeyIIFNAME, set, false), inSet(expr.MetaKeyOIFNAME, set, false), verdict(expr.VerdictDrop))
	// forward: iifname @bridges accept
	rule(fwd, inSet(expr.MetaKeyIIFNAME, set, false), verdict(expr.VerdictAccept))
	// forward: oifname @bridges drop
	rule(fwd, inSet(expr.MetaKeyOIFNAME, set, false), verdict(expr.VerdictDrop))
	return t.flush("create table " + t.table.Name)
}

// blockHostRouting adds, unless it is there:
//
//	nft add rule ip gocell forward iifname != @bridges oifname != @bridges drop comment "fwd"
//
// for a host whose forwarding gocell switched on: it routes for gocell's
// bridges, not between its other interfaces, as it did not before.
func (t *nft) blockHostRouting() error {
	rules, err := t.tagged(forwardTag)
	if err != nil || len(rules) > 0 {
		return err
	}
	set := t.bridgeSet()
	t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: t.chain(chainForward), UserData: tagData(forwardTag),
		Exprs: join(inSet(expr.MetaKeyIIFNAME, set, true), inSet(expr.MetaKeyOIFNAME, set, true),
			verdict(expr.VerdictDrop))})
	return t.flush("block host routing")
}

// deleteTable deletes the table and everything in it, if it exists.
// Equivalent to: nft delete table ip gocell
func (t *nft) deleteTable() error {
	ok, err := t.exists()
	if err != nil || !ok {
		return err
	}
	t.conn.DelTable(t.table)
	return t.flush("delete table " + t.table.Name)
}

// deleteIfUnused deletes the table once its set of bridges is empty: with
// no gocell bridge left, none of its rules can match anything.
func (t *nft) deleteIfUnused() error {
	ok, err := t.exists()
	if err != nil || !ok {
		return err
	}
	elems, err := t.conn.GetSetElements(t.bridgeSet())
	if err != nil {
		return fmt.Errorf("nftables: list set %s: %w", setBridges, err)
	}
	if len(elems) > 0 {
		return nil
	}
	return t.deleteTable()
}

// addNetwork puts a network's bridge into the bridges set and adds its NAT
// rules, unless they are there. Call it with the lock held, after
// ensureTable. Equivalent to:
//
//	nft add element ip gocell bridges { BRIDGE }
//	nft insert rule ip gocell forward iifname BRIDGE oifname BRIDGE accept comment "net:NAME"
//	nft add rule ip gocell postrouting ip saddr SUBNET oifname != BRIDGE masquerade comment "net:NAME"
//	nft add rule ip gocell postrouting ip saddr SUBNET oifname BRIDGE ct status dnat masquerade comment "net:NAME"
func (t *nft) addNetwork(n *Network) error {
	rules, err := t.tagged(networkTag(n.Name))
	if err != nil {
		return err
	}
	set := t.bridgeSet()
	if err := t.conn.SetAddElements(set, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
		return fmt.Errorf("nftables: add %s to set %s: %w", n.Bridge, setBridges, err)
	}
	if len(rules) == 0 {
		// Inserted at the head of forward, before the isolation drop.
		t.conn.InsertRule(&nftables.Rule{Table: t.table, Chain: t.chain(chainForward), UserData: tagData(networkTag(n.Name)),
			Exprs: join(ifnameIs(expr.MetaKeyIIFNAME, n.Bridge, expr.CmpOpEq),
				ifnameIs(expr.MetaKeyOIFNAME, n.Bridge, expr.CmpOpEq), verdict(expr.VerdictAccept))})
		post := t.chain(chainPostrouting)
		tag := tagData(networkTag(n.Name))
		subnet := ipMatch(offSaddr, n.ipnet())
		t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: post, UserData: tag,
			Exprs: join(subnet, ifnameIs(expr.MetaKeyOIFNAME, n.Bridge, expr.CmpOpNeq), masquerade())})
		t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: post, UserData: tag,
			Exprs: join(subnet, ifnameIs(expr.MetaKeyOIFNAME, n.Bridge, expr.CmpOpEq),
				ctBits(expr.CtKeySTATUS, ipsDstNAT), masquerade())})
	}
	return t.flush("add network " + n.Name)
}

// removeNetwork undoes addNetwork; what is not there is skipped. Call it
// with the lock held. Equivalent to:
//
//	nft delete element ip gocell bridges { BRIDGE }
//	nft delete rule ip gocell CHAIN handle H   # for each "net:NAME" rule
func (t *nft) removeNetwork(n *Network) error {
	ok, err := t.exists()
	if err != nil || !ok {
		return err
	}
	rules, err := t.tagged(networkTag(n.Name))
	if err != nil {
		return err
	}
	set := t.bridgeSet()
	elems, err := t.conn.GetSetElements(set)
	if err != nil {
		return fmt.Errorf("nftables: list set %s: %w", setBridges, err)
	}
	member := false
	for _, e := range elems {
		member = member || string(e.Key) == string(ifname(n.Bridge))
	}
	if !member && len(rules) == 0 {
		return nil
	}
	// Deleting an element that is not there would fail the whole batch.
	if member {
		if err := t.conn.SetDeleteElements(set, []nftables.SetElement{{Key: ifname(n.Bridge)}}); err != nil {
			return fmt.Errorf("nftables: delete %s from set %s: %w", n.Bridge, setBridges, err)
		}
	}
	if err := t.delete(rules); err != nil {
		return err
	}
	return t.flush("remove network " + n.Name)
}

// addPorts adds the DNAT rules of a container's published ports, to the
// prerouting chain (connections from elsewhere) and the output chain
// (connections from the host itself), tagged with the container's id.
// Equivalent to, for each port and each of the two chains:
//
//	nft add rule ip gocell prerouting [ip daddr HOSTIP | fib daddr type local] \
//	    meta l4proto tcp tcp dport HOSTPORT dnat to CTRIP:CTRPORT comment "ctr:ID"
func (t *nft) addPorts(ep *Endpoint) error {
	ctr := net.ParseIP(ep.IP).To4()
	if ctr == nil {
		return fmt.Errorf("endpoint address %q: %w", ep.IP, ErrInvalid)
	}
	tag := tagData(containerTag(ep.ContainerID))
	for _, p := range ep.Ports {
		dest := fibLocal()
		if p.HostIP != "" {
			dest = ipMatch(offDaddr, &net.IPNet{IP: net.ParseIP(p.HostIP).To4(), Mask: net.CIDRMask(32, 32)})
		}
		exprs := join(dest, l4Port(p.Proto, p.HostPort), dnat(ctr, p.ContainerPort))
		for _, ch := range []string{chainPrerouting, chainOutput} {
			t.conn.AddRule(&nftables.Rule{Table: t.table, Chain: t.chain(ch), UserData: tag, Exprs: exprs})
		}
	}
	return t.flush("publish ports of " + ep.ContainerID)
}

// removePorts deletes every rule tagged with a container's id.
// Equivalent to: nft delete rule ip gocell CHAIN handle H, for each.
func (t *nft) removePorts(containerID string) error {
	ok, err := t.exists()
	if err != nil || !ok {
		return err
	}
	rules, err := t.tagged(containerTag(containerID))
	if err != nil {
		return err
	}
	if len(rules) == 0 {
		return nil
	}
	if err := t.delete(rules); err != nil {
		return err
	}
	return t.flush("remove ports of " + containerID)
}

// tagged lists the rules of every chain of the table that carry a tag.
// Equivalent to: nft -a list table ip gocell | grep 'comment "TAG"'
func (t *nft) tagged(tag string) ([]*nftables.Rule, error) {
	var out []*nftables.Rule
	for _, name := range []string{chainGuard, chainPrerouting, chainOutput, chainPostrouting, chainForward} {
		rules, err := t.conn.GetRules(t.table, t.chain(name))
		if err != nil {
			return nil, fmt.Errorf("nftables: list chain %s: %w", name, err)
		}
		for _, r := range rules {
			if got, ok := userdata.GetString(r.UserData, userdata.TypeComment); ok && got == tag {
				r.Table, r.Chain = t.table, t.chain(name)
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// delete queues the deletion of rules by their handles.
func (t *nft) delete(rules []*nftables.Rule) error {
	for _, r := range rules {
		if err := t.conn.DelRule(r); err != nil {
			return fmt.Errorf("nftables: delete rule %d: %w", r.Handle, err)
		}
	}
	return nil
}

// --- expressions ---
//
// nft(8) compiles each match into a few register operations: load a value
// (meta, payload, ct, fib), maybe mask it (bitwise), then compare it (cmp)
// or look it up in a set (lookup). These helpers build those sequences.

// Offsets in the IPv4 header.
const (
	offSaddr = 12
	offDaddr = 16
)

// ipsDstNAT is IPS_DST_NAT of the conntrack status bits: the connection's
// destination was rewritten, by a published port's DNAT rule here.
const ipsDstNAT = 1 << 5

// loopbackNet is 127.0.0.0/8.
var loopbackNet = &net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}

// join concatenates expression lists into one rule.
func join(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// tagData is a tag as nft comment userdata.
func tagData(tag string) []byte {
	return userdata.AppendString(nil, userdata.TypeComment, tag)
}

// ifname is an interface name as the kernel compares it: IFNAMSIZ bytes,
// zero-padded.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// ifnameIs: iifname/oifname == or != NAME.
func ifnameIs(key expr.MetaKey, name string, op expr.CmpOp) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Cmp{Op: op, Register: 1, Data: ifname(name)},
	}
}

// inSet: iifname/oifname @SET (or != @SET when invert).
func inSet(key expr.MetaKey, set *nftables.Set, invert bool) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: key, Register: 1},
		&expr.Lookup{SourceRegister: 1, SetName: set.Name, SetID: set.ID, Invert: invert},
	}
}

// ipMatch: ip saddr/daddr NETWORK, as "load 4 bytes, mask, compare".
func ipMatch(offset uint32, ipn *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: ipn.Mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ipn.IP.To4().Mask(ipn.Mask)},
	}
}

// ctBits: ct state/status & BITS != 0, e.g. "ct state established,related".
func ctBits(key expr.CtKey, bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: key},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

// fibLocal: fib daddr type local — the destination is one of the host's
// own addresses, whichever interface holds it.
func fibLocal() []expr.Any {
	return []expr.Any{
		&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.NativeEndian.PutUint32(unix.RTN_LOCAL)},
	}
}

// l4Port: meta l4proto tcp|udp th dport PORT.
func l4Port(proto string, port int) []expr.Any {
	p := byte(unix.IPPROTO_TCP)
	if proto == "udp" {
		p = unix.IPPROTO_UDP
	}
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p}},
		// The destination port is bytes 2-3 of both TCP and UDP headers.
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
	}
}

// dnat: dnat to IP:PORT.
func dnat(ip net.IP, port int) []expr.Any {
	return []expr.Any{
		&expr.Immediate{Register: 1, Data: ip.To4()},
		&expr.Immediate{Register: 2, Data: binaryutil.BigEndian.PutUint16(uint16(port))},
		&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4,
			RegAddrMin: 1, RegProtoMin: 2, Specified: true},
	}
}

// masquerade: masquerade — source NAT to the outgoing interface's address.
func masquerade() []expr.Any {
	return []expr.Any{&expr.Masq{}}
}

// verdict: accept or drop.
func verdict(kind expr.VerdictKind) []expr.Any {
	return []expr.Any{&expr.Verdict{Kind: kind}}
}
