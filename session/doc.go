// Package session holds the sans-IO protocol cores of a PGM source and of
// a PGM receiver: transmit and receive windows, sequence numbering, SPM
// scheduling, NAK/NCF handling, fragmentation and reassembly, FEC,
// small-message batching (BatchConfig), source liveness and late join.
//
// Nothing here opens sockets, starts goroutines, locks, sleeps or reads the
// clock: every method takes the current time, and the owner (package mcast)
// asks for the next deadline and the next datagram to send. A core is not
// safe for concurrent use; one goroutine owns it.
package session
