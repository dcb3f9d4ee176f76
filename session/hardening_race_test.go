//go:build race

package session

// raceEnabled scales the attack tests down under the race detector.
const raceEnabled = true
