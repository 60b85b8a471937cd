// Command tocsin is the one binary of the Tocsin outage alarm: it runs any
// set of its services, in one process on an embedded JetStream server or as
// separate processes against a NATS cluster, and it checks configurations.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const usage = `tocsin — the outage alarm of a web and email hosting provider

Usage:
  tocsin demo [--interval 5s] [--outage-every 40s]
  tocsin run --config FILE [--data DIR] [--nats-listen 127.0.0.1:4222] [--nats URL] [--services LIST] [--location NAME]
  tocsin setup --nats URL [--replicas 3] [--config FILE]
  tocsin validate --config FILE
  tocsin maintenance start|end|list [--nats URL] …
  tocsin ack [--by NAME] INCIDENT
  tocsin status [--nats URL] [--config FILE] [--json] [--max-lag N]
      exits 1 when something needs attention: a service or prober location
      missing, a box down, an incident not acknowledged, a consumer lagging,
      a failover action failed
  tocsin affected HOST-OR-DOMAIN [--config FILE] [--nats URL] [--resolver ADDR]
      [--json]: whether a customer's site or mail is on a box in trouble
  tocsin statuspage export [--config FILE] DIR
  tocsin incident update INCIDENT --status identified --message "…"
  tocsin version

Commands that connect to NATS take --nats-user with --nats-password-file,
--nats-creds or --nats-nkey, and --nats-ca, --nats-cert, --nats-key for TLS.
On the box of a "tocsin run --nats-listen", they need none of these: they
read where it listens and how to log in from its --data directory (--data,
default ./data).
Run "tocsin COMMAND -h" for the flags of a command.
`

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.LookupEnv)
	stop()
	os.Exit(code)
}

// run is the whole program, testable: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, env func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "run":
		return cmdRun(ctx, args[1:], stderr, env)
	case "setup":
		return cmdSetup(ctx, args[1:], stdout, stderr)
	case "demo":
		return cmdDemo(ctx, args[1:], stdout, stderr)
	case "validate":
		return cmdValidate(args[1:], stdout, stderr, env)
	case "incident":
		return cmdIncident(ctx, args[1:], stdout, stderr, env, time.Now)
	case "statuspage":
		return cmdStatuspage(ctx, args[1:], stdout, stderr, env)
	case "ack":
		return cmdAck(ctx, args[1:], stdout, stderr, env, time.Now)
	case "status":
		return cmdStatus(ctx, args[1:], stdout, stderr, env, time.Now)
	case "affected":
		return cmdAffected(ctx, args[1:], stdout, stderr, env, time.Now)
	case "maintenance":
		return cmdMaintenance(ctx, args[1:], stdout, stderr, env, time.Now)
	case "version":
		fmt.Fprintln(stdout, "tocsin", version)
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "tocsin: unknown command %q\n\n%s", args[0], usage)
	return 2
}
