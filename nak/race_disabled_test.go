//go:build !race

package nak

const raceEnabled = false
