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
//
// On top of that, by default (Config.NoGSO, NoGRO turn them off; Offload
// tells what is in use):
//
//   - UDP GSO: WriteBatch sends each run of consecutive datagrams with the
//     same destination and size (the last may be shorter; up to 64
//     datagrams and 65507 bytes, each within the interface MTU) as one
//     super-datagram with a UDP_SEGMENT control message, which the kernel
//     cuts into the original datagrams. If the kernel refuses such a send
//     (EIO: no checksum offload on the device; EINVAL, EMSGSIZE), GSO is
//     turned off for the Conn and the datagrams are sent without it.
//   - UDP_GRO: the kernel may return many datagrams of one sender in one
//     read (on lo and veth: exactly the super-datagrams GSO sent; on NICs:
//     what the driver's GRO merged). ReadBatch reads into 16 buffers of
//     64 KiB of its own and copies the datagrams out, split at the segment
//     size the kernel reports, into the caller's Datagrams, one datagram
//     per entry as without GRO; what does not fit is returned by the next
//     ReadBatch without a system call. If setsockopt(UDP_GRO) fails, the
//     Conn reads without it.
//
// On loopback this moves about 15 times more 1400-byte datagrams per CPU
// second than sendmmsg/recvmmsg alone (BenchmarkWriteReadBatch,
// BenchmarkPipelined). A receiving socket without UDP_GRO (another
// program, an OpenPGM peer) still gets separate datagrams: the kernel
// segments for it.
//
// Other systems: one datagram per ReadBatch or WriteBatch call, with
// net.UDPConn.ReadMsgUDPAddrPort and WriteToUDPAddrPort; reading allocates
// once per datagram (x/net's control message parser). macOS and the BSDs bind
// the group as Linux does. Windows cannot bind a multicast address, so there
// a receiver binds the wildcard address at P, and the destination address is
// not reported, so it is not checked; Windows support is untested.
package udp
