// Package network owns container networking for gocell: the bridges that
// act as each network's switch, the IPAM that leases container addresses,
// the veth pairs that plug a container into its bridge, and the nftables
// rules for outbound NAT and published ports, kept in a table of gocell's
// own. It does not own the container's namespaces or its state file: the
// container package calls Connect from the monitor process (on the host, as
// root) right after the container's init is cloned into a new network
// namespace, stores the returned Endpoint in the container's state, and
// calls Disconnect with it after the container exits — or later, after a
// crash, from whatever process finds the state. A crash can also fall
// between Connect and that record; then the lease is the only trace:
// DisconnectContainer finds the endpoint by the container's id, and the
// next Connect frees any lease whose holder has died.
//
// # What lives where
//
// Options.StateDir holds everything the package remembers between
// processes:
//
//	lock                  flock(2)ed around every change (see lock.go)
//	networks.json         the networks made with Create (not the default)
//	leases/NET/IP         one file per leased address: the Endpoint, the
//	                      holder's pid and its start time
//	ip_forward            present only if gocell switched forwarding on;
//	                      holds the value to restore on Reset
//
// The kernel holds the rest: one bridge per network that has been used
// (the default network "bridge" uses Options.DefaultBridge, others
// "gc-NAME" or "gc-HASH"), one veth pair per container, and the nftables
// table. Connect creates a network's kernel bridge if it is not there;
// it stays when its last container goes, as docker0 does, for the next
// one: removing and making it took longer than the rest of a run. Prune
// (system prune), Remove (network rm) and Reset (system reset) remove it.
//
// # The nftables table
//
// The table is of the ip family, not inet: gocell's networks are IPv4 only,
// and an ip table sees only IPv4 packets, so no rule needs a "meta nfproto
// ipv4" guard before it reads an IPv4 header. Its contents, as `nft list
// table ip gocell` shows them (NET is a network's bridge, SUBNET its CIDR):
//
//	set bridges { type ifname }   # every gocell bridge that exists
//	chain guard { type filter hook prerouting priority raw
//	    iifname != "lo" ip daddr 127.0.0.0/8 drop }       # see "localhost"
//	chain prerouting { type nat hook prerouting priority dstnat
//	    [ip daddr HOSTIP | fib daddr type local] tcp dport HOSTPORT
//	        dnat to CTRIP:CTRPORT comment "ctr:ID" }       # published ports
//	chain output { type nat hook output priority dstnat
//	    the same rules, for connections made on the host itself }
//	chain postrouting { type nat hook postrouting priority srcnat
//	    oifname @bridges ip saddr 127.0.0.0/8 masquerade    # localhost
//	    ip saddr SUBNET oifname != NET masquerade comment "net:NAME"
//	    ip saddr SUBNET oifname NET ct status dnat masquerade comment "net:NAME" }
//	chain forward { type filter hook forward priority filter; policy accept
//	    iifname NET oifname NET accept comment "net:NAME"
//	    ct state established,related accept
//	    ct status dnat accept                 # published ports, from anywhere
//	    iifname @bridges oifname @bridges drop # networks are isolated
//	    iifname @bridges accept               # containers may go out
//	    oifname @bridges drop                 # nothing else comes in
//	    iifname != @bridges oifname != @bridges drop comment "fwd" }
//	                                          # only if gocell switched
//	                                          # forwarding on
//
// The first masquerade rule per network is outbound NAT: a container's
// packets leave the host with the address of the interface they leave
// through. The second is hairpin NAT: a container reaching a published port
// of a container on its own bridge through the host's address would get
// the answer straight from the other container, over the bridge, with a
// source it never talked to; masquerading makes the host the peer of both.
// The per-network accept in forward is for hosts with br_netfilter loaded
// (bridge-nf-call-iptables=1, as Docker and Kubernetes hosts have): there,
// even frames switched inside one bridge pass the forward hook, as coming
// in and going out through the bridge, and the isolation drop would cut
// containers of one network off from each other.
//
// Into a bridge, only what a container asked for passes: answers
// (established), published ports (dnat), and its own network's traffic.
// A neighbour on the LAN that routes 10.77.0.0/16 through this host
// reaches no port a container did not publish, as with Docker's
// isolation and FORWARD drop rules. And when gocell is the one that
// switched forwarding on, the host forwards only for gocell: it did not
// route between its other interfaces before, and does not now.
//
// The forward chain matters on hosts whose forward policy is DROP: our
// accept lets the packet pass our table, but a DROP in another table (an
// iptables-nft filter, say) still drops it; such hosts need their own rule.
//
// Rules carry their owner in their userdata as an nft comment, "ctr:ID"
// for a container's published ports and "net:NAME" for a network's NAT,
// and are deleted by handle after listing the chain and matching the tag.
// Options.Table names the table ("gocell"), so that tests use one of their
// own and never touch a real runtime's rules. The table goes with the last
// gocell bridge (nothing in it could match any more: Prune, Remove), and
// Reset deletes it.
//
// # Forwarding
//
// Routing between a container and anything beyond its bridge needs
// net.ipv4.ip_forward=1. Connect switches it on when it is off, and then
// writes the old value to StateDir/ip_forward. Disconnect never switches it
// back off: another gocell network, another gocell root, or something else
// on the host may rely on it by then (Docker never turns it off either).
// Reset, which removes everything gocell made, writes the old value back
// if gocell was the one that changed it.
//
// # Published ports and localhost
//
// A published port is a DNAT rule in the prerouting chain, for connections
// from other machines and from containers, and the same rule in the output
// chain, for connections made on the host itself. For 127.0.0.1:HOSTPORT
// DNAT alone is not enough: the rewritten packet still has source
// 127.0.0.1, and the kernel refuses to route a loopback source out of a
// non-loopback interface (it is a "martian"). There are two ways out.
// Docker's is a userland proxy: a process listening on the host port that
// copies bytes to the container. gocell instead sets route_localnet=1 on
// its own bridges only (net.ipv4.conf.BRIDGE.route_localnet), which allows
// loopback addresses on them, and masquerades packets from 127.0.0.0/8
// that leave through a gocell bridge, so the container sees the bridge's
// address and its answers find their way back. Why not the proxy: it would
// be a process per port (or goroutines in the monitor) that must be kept
// alive and cleaned up after crashes, while the kernel's rules need
// nothing running and go away with their endpoint. The price is the risk
// route_localnet brings (CVE-2020-8558 in kube-proxy): a container could
// send packets to 127.0.0.1 at the host's MAC address and reach services
// that listen only on the host's loopback. The guard chain drops packets
// for 127.0.0.0/8 that arrive on any interface but lo, before conntrack
// (priority raw) so that the answers to our own masqueraded connections,
// which still carry the bridge's address then, pass. Any interface, not
// only the bridges: the DNAT rules run before routing, so without the
// guard a neighbour on the LAN could send a packet for 127.0.0.1:HOSTPORT
// to the host's MAC address, and have it rewritten to the container and
// forwarded before the kernel's own check for such "martian" addresses
// could drop it.
//
// Nothing holds a published port on the host: Connect checks that it is
// free by binding it once, but a program that binds it later is shadowed
// by the DNAT rule for connections from outside and from containers.
// Docker's proxy would hold it; gocell does not.
//
// # Concurrency
//
// Every operation that reads or changes shared state — leases, the networks
// file, bridges, the nftables table — runs under an exclusive flock(2) on
// StateDir/lock, across goroutines and processes alike. So two Connect calls
// never lease the same address, and a Disconnect that removes a bridge never
// races a Connect that is about to plug into it. The kernel drops the lock
// when its holder dies, so a crash cannot leave it held.
//
// Each operation below names its ip(8) or nft(8) equivalent. Netlink
// requests go through handles of the NETLINK_ROUTE family only, and dumps
// that the kernel reports as interrupted (the list changed while it was
// read) are asked for again.
package network
