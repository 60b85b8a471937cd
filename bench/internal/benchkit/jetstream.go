package benchkit

import (
	"os"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
)

// JetStream starts a JetStream server in this process, as `tocsin run`
// embeds it, storing in a new temporary directory named for the program.
// stop shuts the server down, waits for it, and removes the directory.
func JetStream(program string) (ns *server.Server, stop func(), err error) {
	dir, err := os.MkdirTemp("", "tocsin-bench-"+program+"-")
	if err != nil {
		return nil, nil, err
	}
	ns, err = bus.StartEmbedded(bus.EmbeddedOptions{Dir: dir})
	if err != nil {
		os.RemoveAll(dir)
		return nil, nil, err
	}
	return ns, func() {
		ns.Shutdown()
		ns.WaitForShutdown()
		os.RemoveAll(dir)
	}, nil
}
