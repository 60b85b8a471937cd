package bus

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/internal/platform/config"
	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Limits bound what the bus keeps, so that no stream can fill the disk
// (after which every write of every stream fails) and no publisher, by
// mistake or on purpose, can push out what the others need.
type Limits struct {
	// MaxStore is the bytes on disk that every stream and bucket kept on
	// file share, each in proportion to what it holds.
	MaxStore int64
	// MaxMemory is the bytes in memory of the streams kept there: the
	// probe tasks.
	MaxMemory int64
}

// orDefault fills what is not set with the config's defaults.
func (l Limits) orDefault() Limits {
	if l.MaxStore <= 0 {
		l.MaxStore = config.DefaultMaxStore
	}
	if l.MaxMemory <= 0 {
		l.MaxMemory = config.DefaultMaxMemory
	}
	return l
}

// ErrStoreFull is the cause of a write that a stream or bucket refused
// because it is full. A stream of history (incidents, deliveries) refuses
// what is new rather than lose what it holds; the write can succeed once
// the bus has more room (bus.max_store) or room is made.
var ErrStoreFull = errors.New("stream full")

// ErrTooLarge is the cause of a write refused for its size: larger than
// the stream or bucket takes in one message.
var ErrTooLarge = errors.New("message too large")

// IsStoreFull reports whether err is a write refused by a full stream or
// bucket, or by a server out of the room it was given.
func IsStoreFull(err error) bool {
	if errors.Is(err, ErrStoreFull) {
		return true
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	switch apiErr.ErrorCode {
	case 10077: // JSStreamStoreFailedF: the stream's own limit, in words
		return strings.Contains(apiErr.Description, "maximum bytes") || strings.Contains(apiErr.Description, "maximum messages")
	case 10047: // JSInsufficientResourcesErr: the server's limit
		return true
	}
	return false
}

// refused is a write a stream refused for room or size, explained.
type refused struct {
	stream string
	full   bool
	err    error
}

func (r refused) Error() string {
	if r.full {
		return fmt.Sprintf("stream %s is full: it refuses new messages rather than drop those it holds; give the bus more room (bus.max_store in the config) or make room: %v", r.stream, r.err)
	}
	return fmt.Sprintf("stream %s refuses a message this large: %v", r.stream, r.err)
}

func (r refused) Unwrap() error { return r.err }

func (r refused) Is(target error) bool {
	return (r.full && target == ErrStoreFull) || (!r.full && target == ErrTooLarge)
}

// storeError explains a write refused for room or size, naming the stream
// and what to do, and returns any other error as it is.
func storeError(stream string, err error) error {
	switch {
	case err == nil:
		return nil
	case IsStoreFull(err):
		return refused{stream: stream, full: true, err: err}
	case errors.Is(err, jetstream.ErrStreamMessageExceedsMaximum):
		return refused{stream: stream, err: err}
	}
	return err
}

// streamOf names the stream that takes subject, for errors.
func streamOf(subject string) string {
	for _, s := range events.StreamConfigs(1) {
		for _, f := range s.Subjects {
			if subjectMatches(f, subject) {
				return s.Name
			}
		}
	}
	return "for " + subject
}

// subjectMatches reports whether a NATS subject filter takes subject.
func subjectMatches(filter, subject string) bool {
	fs, ss := strings.Split(filter, "."), strings.Split(subject, ".")
	for i, f := range fs {
		if f == ">" {
			return len(ss) > i
		}
		if i >= len(ss) || (f != "*" && f != ss[i]) {
			return false
		}
	}
	return len(fs) == len(ss)
}

// StreamUsage is how full one stream or bucket is. A bucket is named as
// its stream: KV_ and the bucket's name.
type StreamUsage struct {
	Stream   string
	Bytes    uint64 // stored now
	MaxBytes int64  // the most it keeps; 0 or less when unbounded
}

// Fill is the part of MaxBytes in use, 0 for an unbounded stream.
func (u StreamUsage) Fill() float64 {
	if u.MaxBytes <= 0 {
		return 0
	}
	return float64(u.Bytes) / float64(u.MaxBytes)
}

// WarnFill is the fill past which a stream or bucket needs someone's
// attention: a stream of history refuses new events once full.
const WarnFill = 0.8

// Usage is the fill of every stream and bucket Tocsin uses that this user
// may look up, in the order of events.StreamConfigs then BucketConfigs. It
// is the hook for anything that watches the store: metrics, the warning of
// WatchUsage, an alert to staff. A stream or bucket that is missing or
// that this user may not see is left out; any other error is returned.
func (b *Bus) Usage(ctx context.Context) ([]StreamUsage, error) {
	var names []string
	for _, s := range events.StreamConfigs(1) {
		names = append(names, s.Name)
	}
	for _, kv := range events.BucketConfigs(1) {
		names = append(names, "KV_"+kv.Bucket)
	}
	var out []StreamUsage
	for _, name := range names {
		var info *jetstream.StreamInfo
		err := b.unlessDenied(ctx, func(ctx context.Context) error {
			s, err := b.JS.Stream(ctx, name)
			if err != nil {
				return err
			}
			info = s.CachedInfo()
			return nil
		})
		switch {
		case errors.Is(err, errDenied), errors.Is(err, jetstream.ErrStreamNotFound):
			continue
		case err != nil:
			return out, fmt.Errorf("stream %s: %w", name, err)
		}
		out = append(out, StreamUsage{Stream: name, Bytes: info.State.Bytes, MaxBytes: info.Config.MaxBytes})
	}
	return out, nil
}

// WatchUsage looks at Usage every period until ctx ends, and calls over
// once for each stream or bucket that passes WarnFill, again only after it
// has fallen back below it. A failed look is skipped: the next one tries
// again.
func (b *Bus) WatchUsage(ctx context.Context, every time.Duration, over func(StreamUsage)) {
	warned := map[string]bool{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		uctx, cancel := context.WithTimeout(ctx, min(every, 10*time.Second))
		usage, _ := b.Usage(uctx)
		cancel()
		for _, u := range usage {
			switch full := u.Fill() >= WarnFill; {
			case full && !warned[u.Stream]:
				warned[u.Stream] = true
				over(u)
			case !full:
				delete(warned, u.Stream)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
