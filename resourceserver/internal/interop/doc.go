// Package interop holds only tests: the resourceserver middleware against
// the real Gatehouse token server. They live apart from the resourceserver
// package so that its own tests build without the token server's
// dependencies.
package interop
