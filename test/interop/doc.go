// Package interop holds only tests: the resourceserver module, which
// resource servers import on its own (resourceserver/go.mod), against the
// real Gatehouse token server in this module. The resourceserver module
// cannot import the token server, so what the two must agree on (token
// format, key rotation, the subject of a client's own token) is checked
// here, where both are in reach (docs/architecture.md, test tier 3).
package interop
