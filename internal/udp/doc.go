// Package udp is the socket layer: PGM in UDP encapsulation over real IPv4
// and IPv6 multicast sockets (golang.org/x/net/ipv4, ipv6), with batched
// reads and writes where the OS has them.
//
// # Sockets and ports
//
// One UDP port P carries everything (design.md §4, ZeroMQ's convention):
// data, SPM, NCF and RDATA go to group:P; NAKs and SPMRs go unicast to the
// source's NLA at port P.
//
//   - OpenSource opens one socket bound exclusively (no SO_REUSEADDR or
//     SO_REUSEPORT) to its unicast address Addr:P. It sends to the group from
//     it and reads the receivers' unicast NAKs and SPMRs on it. Only this
//     socket gets what is sent to Addr:P, however many receivers share port P
//     on the host (OpenPGM's same-host trap, design.md §5, cannot happen). A
//     second source on the same Addr:P fails; give it another Config.Addr
//     (on loopback, 127.0.0.2 and so on).
//   - OpenReceiver opens a receive socket bound to group:P with SO_REUSEADDR
//     and SO_REUSEPORT (so any number of receivers on a host each get every
//     datagram, next to OpenPGM/ZeroMQ peers that bind INADDR_ANY:P with
//     either option), joined on the interface, with IP_MULTICAST_ALL off on
//     Linux; and a send socket bound to Addr at an ephemeral port for NAKs
//     and SPMRs.
//
// Binding the group keeps other groups on port P out; the destination
// address of every datagram (IP_PKTINFO/IPV6_PKTINFO) is checked as well.
//
// # Addresses
//
// Addresses returned (LocalAddr, Datagram.Addr, Datagram.Dst, Group) carry no
// IPv6 zone: everything a Conn does is on its one interface. When writing, an
// IPv6 destination that needs a zone (link-local unicast such as a source's
// NLA from an SPM, or link-local multicast) and has none is sent on the
// Conn's interface; an explicit zone is honoured.
//
// # Platforms
//
// Linux: ReadBatch is one recvmmsg and WriteBatch one sendmmsg per 64
// datagrams, on buffers, headers and addresses allocated once per Conn: no
// allocation per call or per datagram. (x/net's ipv4/ipv6 ReadBatch makes the
// same calls but allocates three times per datagram; see BenchmarkXNetBatch.)
// The per-message control buffers have room for UDP_GRO and UDP_SEGMENT,
// which are the next step (design.md §3).
//
// Other systems: one datagram per ReadBatch or WriteBatch call, with
// net.UDPConn.ReadMsgUDPAddrPort and WriteToUDPAddrPort; reading allocates
// once per datagram (x/net's control message parser). macOS and the BSDs bind
// the group as Linux does. Windows cannot bind a multicast address, so there
// a receiver binds the wildcard address at P, and the destination address is
// not reported, so it is not checked; Windows support is untested.
package udp
