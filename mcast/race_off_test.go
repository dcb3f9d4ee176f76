//go:build !race

package mcast_test

const raceEnabled = false
