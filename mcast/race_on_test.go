//go:build race

package mcast_test

// raceEnabled: under the race detector sync.Pool drops items at random,
// so the in-memory network (mcasttest) allocates; allocation counts
// mean nothing then.
const raceEnabled = true
