package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/nats-io/nats.go/jetstream"
)

// GetJSON reads a key-value record into v, a pointer to a zero value, and
// returns its revision: 0, and v untouched, when there is no such key. A
// record that cannot be decoded must not stop the alarm: v is then left
// zero, to be written afresh at the revision returned.
func GetJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", key, err)
	}
	decodeOrZero(e.Value(), v)
	return e.Revision(), nil
}

// decodeOrZero decodes a stored value into v, or leaves v zero when it
// does not decode (see GetJSON).
func decodeOrZero(value []byte, v any) {
	if err := json.Unmarshal(value, v); err != nil {
		reflect.ValueOf(v).Elem().SetZero()
	}
}

// PutJSON writes v under key only if nobody wrote it since rev (0: only if
// it does not exist yet), and returns the new revision; a lost race is an
// error that IsConflict recognises.
//
// On a cluster, a write meeting another write to the key still in flight
// is refused without saying which won (InFlight); so is, for a moment, a
// write following the writer's own acknowledged one. It is tried again a
// moment later, until it is stored or meets the stored winner.
func PutJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any, rev uint64) (uint64, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return 0, err
	}
	var next uint64
	err = whileAnswered(ctx, jetstream.JSErrCodeStreamWrongLastSequenceConstant, func() (err error) {
		if rev == 0 {
			next, err = kv.Create(ctx, key, b)
		} else {
			next, err = kv.Update(ctx, key, b, rev)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	return next, nil
}
