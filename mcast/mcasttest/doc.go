// Package mcasttest is an in-memory multicast network for tests, in the
// spirit of net/http/httptest: no sockets, seeded loss, burst loss,
// reordering, duplication and latency, and deterministic enough to assert
// exact outcomes.
//
// A [Network] connects [Endpoint]s. Each Endpoint is a host address with a
// bound UDP port and implements the transport contract the mcast package
// runs on (ReadBatch, WriteBatch, LocalAddr, Close over [Datagram]s):
//
//   - A datagram written to a multicast group:port is copied to every
//     endpoint that joined that group:port, in join order, the writer
//     included only if it joined (joining is "multicast loop on").
//   - A datagram written to a unicast addr:port goes to the endpoint bound
//     there (the oldest open one if several share it, as SO_REUSEADDR
//     sockets would); with none, it is dropped and counted in
//     [NetworkStats].Unroutable.
//   - Each receiving endpoint applies its own drop rule ([Endpoint.SetDrop]),
//     impairment ([Endpoint.SetImpairment]), one-way latency and jitter
//     ([NetworkConfig]) and bounded receive queue, and counts every drop in
//     [EndpointStats].
//
// Datagrams are copied into pooled buffers, so writers may reuse theirs at
// once, and steady-state traffic does not allocate.
//
// # Determinism
//
// Impairment decisions are drawn per receiving endpoint from a PCG seeded by
// the Impairment's Seed, the NetworkConfig.Seed and the endpoint's address
// and port, so two endpoints given the same Impairment still lose different
// datagrams, and the same program run twice loses the same ones. With one
// writing goroutine (or writers whose order is otherwise fixed) the
// deliveries are identical on every run.
//
// # testing/synctest
//
// The network is built for synctest bubbles: a blocked ReadBatch waits on
// channels only, latency is implemented with time.AfterFunc (faked in a
// bubble), and no background goroutine is ever started. Mutexes guard short
// bookkeeping only and are never held while waiting. To use it in a bubble:
//
//   - Create the Network and its Endpoints inside the bubble
//     (synctest.Test's function). Channels and timers belong to the bubble
//     they were created in: an endpoint made outside is not durably
//     blocking inside, and one made inside panics if used outside.
//   - Close the Network (or every Endpoint) before the bubble's function
//     returns, typically with defer, so that goroutines blocked in
//     ReadBatch return and the bubble can end. Close also stops the
//     latency timers, discarding datagrams still in flight.
//   - With Latency and Jitter 0, WriteBatch delivers synchronously and no
//     fake time passes; with Latency L, a datagram becomes readable exactly
//     L (plus its jitter) after WriteBatch, in fake time.
//   - Impairment Filter functions and SetDrop rules run on the writer's
//     goroutine and must not block or call back into the Network.
package mcasttest

import (
	"github.com/relmcast/relmcast/internal/lossy"
	"github.com/relmcast/relmcast/internal/udp"
)

// Datagram is one UDP datagram read from or written to an Endpoint (an
// alias of the transport layer's type, so code outside this module can name
// it). For reads, Addr is the sender's addr:port and Dst the group or
// unicast address it was sent to.
type Datagram = udp.Datagram

// Transport is the interface an Endpoint implements (an alias of the
// transport layer's interface).
type Transport = udp.Transport

// Impairment configures seeded receive-side loss, burst loss, reordering
// and duplication for an Endpoint; see [Endpoint.SetImpairment]. It is an
// alias of the loss injector's Config, so code outside this module can build
// one.
type Impairment = lossy.Config
