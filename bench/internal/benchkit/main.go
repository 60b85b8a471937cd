package benchkit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Interruptible runs run with a context that Ctrl-C or SIGTERM ends, so
// that a benchmark stops what it started before it exits.
func Interruptible(run func(ctx context.Context) error) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return run(ctx)
}

// Exit ends the benchmark program called name as its run ended: at once
// when it succeeded; with status 130 when it was interrupted, what it
// started being stopped; otherwise with err on stderr and status 1.
func Exit(name string, err error) {
	switch {
	case err == nil:
		return
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(os.Stderr, name+": interrupted; what it started is stopped")
		os.Exit(130)
	}
	fmt.Fprintln(os.Stderr, name+":", err)
	os.Exit(1)
}
