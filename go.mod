module github.com/relmcast/relmcast

go 1.26.8

require (
	github.com/klauspost/reedsolomon v1.14.2
	golang.org/x/net v0.62.0
	golang.org/x/sys v0.50.0
	golang.org/x/term v0.48.0
)

require github.com/klauspost/cpuid/v2 v2.3.0 // indirect
