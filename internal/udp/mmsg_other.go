//go:build !linux

package udp

import "net"

// mmsg is the batched I/O state; off Linux there is none, and the Conn
// reads and writes one datagram per call (readGeneric, writeGeneric).
type mmsg struct{ try bool }

func newMmsg(*net.UDPConn) *mmsg { return nil }

// No offloads either.
func (*mmsg) enableGSO(int, bool) bool { return false }
func (*mmsg) enableGRO() bool          { return false }
func (*mmsg) disableGRO()              {}

func (c *Conn) readMmsg(ds []Datagram) (int, error)  { return c.readGeneric(ds) }
func (c *Conn) writeMmsg(ds []Datagram) (int, error) { return c.writeGeneric(ds) }
