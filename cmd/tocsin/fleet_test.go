package main

import "github.com/tocsin-alarm/tocsin/internal/demo"

// newLoopbackServer is a server of the demo's kind for the tests' fleets:
// one that can be switched off and on again at the same address.
func newLoopbackServer(name, banner string) (*demo.Server, error) {
	return demo.NewServer(name, banner)
}
