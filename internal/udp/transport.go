package udp

import "net/netip"

// Datagram is one UDP datagram read from or written to a Transport.
//
// For reads, Buf is the caller's buffer (its full length is available to the
// read); after the read N is the number of bytes received, Addr the sender's
// address and Dst the IP destination address of the datagram (the multicast
// group or the local unicast address), when the transport knows it.
// For writes, Buf[:N] is sent to Addr; Dst is ignored.
type Datagram struct {
	Buf  []byte
	N    int
	Addr netip.AddrPort
	Dst  netip.Addr
}

// Transport moves PGM datagrams for one endpoint. Implementations: the real
// multicast sockets in this package, the in-memory network in mcast/mcasttest,
// and the loss injector in internal/lossy, which wraps either.
//
// ReadBatch blocks until at least one datagram is available, fills ds[:n] and
// returns n. WriteBatch sends ds[:n] in order and returns how many were sent.
// After Close, both return an error wrapping net.ErrClosed, and a blocked
// ReadBatch returns promptly. A Transport is used by at most one reading and
// one writing goroutine at a time.
type Transport interface {
	ReadBatch(ds []Datagram) (int, error)
	WriteBatch(ds []Datagram) (int, error)
	// LocalAddr is the unicast address this endpoint is reached at: a
	// source advertises it in SPMs as its path NLA and receives NAKs there.
	LocalAddr() netip.Addr
	Close() error
}
