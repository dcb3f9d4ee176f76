package wire

import (
	"encoding/binary"
	"net/netip"
)

// NLA (network layer address) encoding, as in OpenPGM sockaddr.c:
// AFI u16 (1 = IPv4, 2 = IPv6), reserved u16 (0), then the address.
const (
	afiIPv4 = 1
	afiIPv6 = 2
)

// nlaLen is the encoded size of a: 8 for IPv4 (including an IPv4-mapped
// IPv6 address, which appendNLA sends as IPv4), 20 for IPv6.
func nlaLen(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 8
	}
	return 20
}

// parseNLA decodes an NLA at the start of b and returns it and its size.
func parseNLA(b []byte) (netip.Addr, int, error) {
	if len(b) < 4 {
		return netip.Addr{}, 0, ErrShort
	}
	switch binary.BigEndian.Uint16(b) {
	case afiIPv4:
		if len(b) < 8 {
			return netip.Addr{}, 0, ErrShort
		}
		return netip.AddrFrom4([4]byte(b[4:8])), 8, nil
	case afiIPv6:
		if len(b) < 20 {
			return netip.Addr{}, 0, ErrShort
		}
		return netip.AddrFrom16([16]byte(b[4:20])), 20, nil
	}
	return netip.Addr{}, 0, ErrNLA
}

// appendNLA encodes a; a must be valid. An IPv4-mapped IPv6 address is
// sent as IPv4. The zone of a link-local address is not carried.
func appendNLA(b []byte, a netip.Addr) []byte {
	a = a.Unmap()
	if a.Is4() {
		v := a.As4()
		b = append(b, 0, afiIPv4, 0, 0)
		return append(b, v[:]...)
	}
	v := a.As16()
	b = append(b, 0, afiIPv6, 0, 0)
	return append(b, v[:]...)
}
