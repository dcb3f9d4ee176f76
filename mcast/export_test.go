package mcast

// The tests name sequence numbers (drop filters, expected events): they
// run with senders numbering from 0, except where a test sets
// ZeroFirstSeq to false to see the random first sequence number.
func init() { zeroFirstSeq = true }

// ZeroFirstSeq is zeroFirstSeq, for the tests.
var ZeroFirstSeq = &zeroFirstSeq
