//go:build !race

package mcasttest

const raceEnabled = false
