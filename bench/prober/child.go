package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// serveJetStream runs a JetStream server on a loopback port, as `tocsin run`
// embeds it but in a process of its own.
func serveJetStream(dir string) error {
	ns, err := bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir, Listen: "127.0.0.1:-1", Open: true})
	if err != nil {
		return err
	}
	fmt.Println(ns.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	ns.Shutdown()
	ns.WaitForShutdown()
	return nil
}
