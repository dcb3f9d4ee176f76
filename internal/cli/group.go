package cli

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// DefaultPort is the port a group without one gets (mcast.DefaultPort).
const DefaultPort = 7500

// ParseGroup parses a multicast group with its port: "239.192.0.1:7500",
// "[ff02::1:3%v0]:7500" (the zone names the interface). A group without a
// port gets DefaultPort ("239.192.0.1", "ff02::1:3%v0"), and a port alone
// (":7600") the default group 239.192.0.1. The errors say what to write.
func ParseGroup(s string) (netip.AddrPort, error) {
	orig := s
	s = strings.TrimSpace(s)
	const eg = "write ADDR:PORT such as 239.192.0.1:7500 or [ff02::1:3%v0]:7500"
	if s == "" {
		return netip.AddrPort{}, fmt.Errorf("empty group; %s", eg)
	}
	var (
		addr netip.Addr
		port = uint16(DefaultPort)
		err  error
	)
	if a, e := netip.ParseAddr(strings.Trim(s, "[]")); e == nil && validZone(a.Zone()) && (strings.HasPrefix(s, "[") == strings.HasSuffix(s, "]")) {
		// An address alone: "239.192.0.1", "ff02::1:3%v0", "[ff02::1]".
		addr = a
	} else {
		host, ps, e := net.SplitHostPort(s)
		if e != nil {
			if strings.Count(s, ":") > 1 && !strings.HasPrefix(s, "[") && !strings.Contains(s, ".") {
				return netip.AddrPort{}, fmt.Errorf("group %q: put an IPv6 address in brackets before the port, as in [ff02::1:3%%v0]:7500", orig)
			}
			return netip.AddrPort{}, fmt.Errorf("group %q: %s", orig, eg)
		}
		p, e := strconv.ParseUint(ps, 10, 16)
		if e != nil || p == 0 {
			return netip.AddrPort{}, fmt.Errorf("group %q: port %q is not a number from 1 to 65535; %s", orig, ps, eg)
		}
		port = uint16(p)
		if host == "" {
			addr = netip.AddrFrom4([4]byte{239, 192, 0, 1})
		} else if addr, err = netip.ParseAddr(host); err != nil || !validZone(addr.Zone()) {
			if a, _, zoned := strings.Cut(host, "%"); zoned && strings.Contains(a, ".") {
				return netip.AddrPort{}, fmt.Errorf("group %q: a zone is for IPv6 only; choose the interface with --iface", orig)
			}
			return netip.AddrPort{}, fmt.Errorf("group %q: %q is not an IP address (host names are not looked up); %s", orig, host, eg)
		}
	}
	if addr.Is4In6() {
		addr = addr.Unmap()
	}
	if !addr.IsMulticast() {
		return netip.AddrPort{}, fmt.Errorf("group %q: %v is not a multicast address; use one in 224.0.0.0/4 (e.g. 239.192.0.1, organisation-local) or ff00::/8 (e.g. ff02::1:3%%v0, link-local)", orig, addr.WithZone(""))
	}
	if addr.Is4() && addr.Zone() != "" {
		return netip.AddrPort{}, fmt.Errorf("group %q: a zone is for IPv6 only; choose the interface with --iface", orig)
	}
	return netip.AddrPortFrom(addr, port), nil
}

// Interface resolves the interface to use from --iface (name, may be
// empty) and the group's zone (a name or an index, may be empty). When
// both are given they must name the same interface. It returns nil when
// neither is given: the library picks one.
func Interface(name string, group netip.AddrPort) (*net.Interface, error) {
	var byName, byZone *net.Interface
	if name != "" {
		ifi, err := net.InterfaceByName(name)
		if err != nil {
			return nil, fmt.Errorf("--iface %s: no such interface; list them with `ip link`", name)
		}
		byName = ifi
	}
	if zone := group.Addr().Zone(); zone != "" {
		var (
			ifi *net.Interface
			err error
		)
		if n, e := strconv.Atoi(zone); e == nil {
			ifi, err = net.InterfaceByIndex(n)
		} else {
			ifi, err = net.InterfaceByName(zone)
		}
		if err != nil {
			return nil, fmt.Errorf("--group %v: zone %q is not an interface on this host; list them with `ip link`", group, zone)
		}
		byZone = ifi
	}
	if byName != nil && byZone != nil && byName.Index != byZone.Index {
		return nil, fmt.Errorf("--iface %s and the zone of --group %v name different interfaces; give one of them", name, group)
	}
	if byName != nil {
		return byName, nil
	}
	return byZone, nil
}

// GroupFlag is a flag.Value holding a group (see ParseGroup).
type GroupFlag struct{ AddrPort netip.AddrPort }

// Set implements flag.Value.
func (g *GroupFlag) Set(s string) error {
	ap, err := ParseGroup(s)
	if err != nil {
		return err
	}
	g.AddrPort = ap
	return nil
}

// String implements flag.Value.
func (g *GroupFlag) String() string {
	if g == nil || !g.AddrPort.IsValid() {
		return ""
	}
	return g.AddrPort.String()
}

// AddrFlag is a flag.Value holding a unicast IP address.
type AddrFlag struct{ Addr netip.Addr }

// Set implements flag.Value.
func (a *AddrFlag) Set(s string) error {
	ip, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(s), "[]"))
	if err != nil {
		return fmt.Errorf("%q is not an IP address; write e.g. 127.0.0.1 or fe80::1%%v0", s)
	}
	if ip.IsMulticast() || ip.IsUnspecified() {
		return fmt.Errorf("%v is not a unicast address of this host; write e.g. 127.0.0.1 or 192.0.2.10", ip)
	}
	a.Addr = ip.Unmap()
	return nil
}

// String implements flag.Value.
func (a *AddrFlag) String() string {
	if a == nil || !a.Addr.IsValid() {
		return ""
	}
	return a.Addr.String()
}

// validZone reports whether z can name an interface: letters, digits and
// ".-_@" (interface names), or empty.
func validZone(z string) bool {
	for _, c := range z {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".-_@", c)) {
			return false
		}
	}
	return true
}
