// Package interop holds the interoperability tests of relmcast against
// the PGM implementations it must be byte-compatible with: OpenPGM 5.3
// (libpgm) and ZeroMQ's epgm transport (libzmq over libpgm), plus a wire
// conformance check of what we send against tshark's PGM dissector.
//
// The peers are small C programs of our own (peers/*.c), compiled by the
// tests with cc and pkg-config. Our source binds its unicast address and
// port P alone, while OpenPGM and ZeroMQ bind *:P with SO_REUSEPORT, so
// the two cannot share a host on one port: the tests run in two network
// namespaces joined by a veth pair, which scripts/interop builds inside
// the private namespace of scripts/netns before it runs them:
//
//	scripts/interop            # or: scripts/interop -run OpenPGM
//
// Outside that topology every test skips, saying so. Inside it a missing
// peer package (libpgm-dev, libzmq3-dev, tshark) fails the tests.
package interop
