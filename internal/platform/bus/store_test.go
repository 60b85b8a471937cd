package bus_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/tocsin-alarm/tocsin/internal/platform/bus"
	"github.com/tocsin-alarm/tocsin/internal/testkit/bustest"
)

// TestEnsureConcurrently: services started together each set up the
// streams; the server, which has room for one set only, refuses the ones
// made twice, and every service finds them made.
func TestEnsureConcurrently(t *testing.T) {
	t.Parallel()
	for range 3 {
		srv := bustest.Start(t)
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				b, err := bus.Connect(srv.URL, nil, t.Name(), slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					errs <- err
					return
				}
				defer b.NC.Close()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				errs <- b.Ensure(ctx, 1)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Errorf("Ensure beside others: %v", err)
			}
		}
	}
}
