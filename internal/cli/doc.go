// Package cli holds what the mcsend and mcrecv commands share: parsing of
// their addressing and rate flags (with errors that say what to write
// instead), the numbered test messages that mcsend --count generates and
// mcrecv --verify checks, and the formatting of their summary lines.
package cli
