package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// A key-value read (kv.Get) is a direct get, which on a cluster any
// replica answers once it has nearly caught up with its leader: a read
// right after a write may not see it. A decision to write is safe anyway,
// under compare-and-set; a decision to do nothing is not, since nothing
// ever shows it was taken on an old record. ReadLeader reads as the
// stream's leader has it, through JetStream's STREAM.MSG.GET, which only
// the leader answers, after every acknowledged write.

// msgGetResponse is JetStream's answer to STREAM.MSG.GET.
type msgGetResponse struct {
	Error   *jetstream.APIError `json:"error"`
	Message *struct {
		Sequence uint64 `json:"seq"`
		Header   []byte `json:"hdrs"`
		Data     []byte `json:"data"`
	} `json:"message"`
}

// ReadLeader is Read, from the bucket's stream leader: for a read that
// decides to do nothing, on a record written a moment before.
func (rs Records) ReadLeader(ctx context.Context, key string, rec any) (uint64, error) {
	value, rev, err := rs.Bus.LeaderGet(ctx, rs.KV, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	rs.Decode(key, value, rec)
	return rev, nil
}

// GetLeaderJSON is GetJSON, from the bucket's stream leader.
func (b *Bus) GetLeaderJSON(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	value, rev, err := b.LeaderGet(ctx, kv, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	decodeOrZero(value, v)
	return rev, nil
}

// leaderGetTimeout bounds a leader read whose context has no deadline, as
// nats.go bounds its own requests: a request the leader never answers (it
// died, or none is elected yet) must not stop the caller for good.
const leaderGetTimeout = 5 * time.Second

// validKey is the form of a key-value key, as nats.go checks it: a key
// with a wildcard would read another key's record.
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

// LeaderGet is kv.Get, from the bucket's stream leader: the value under
// key and its revision, or jetstream.ErrKeyNotFound when there is none or
// it was deleted.
func (b *Bus) LeaderGet(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, uint64, error) {
	if !validKey.MatchString(key) || strings.HasPrefix(key, ".") || strings.HasSuffix(key, ".") {
		return nil, 0, jetstream.ErrInvalidKey
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, leaderGetTimeout)
		defer cancel()
	}
	bucket := kv.Bucket()
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{"$KV." + bucket + "." + key})
	if err != nil {
		return nil, 0, err
	}
	fail := func(err error) ([]byte, uint64, error) {
		return nil, 0, fmt.Errorf("read %s from its leader: %w", key, err)
	}
	subject := b.apiPrefix() + "STREAM.MSG.GET.KV_" + bucket
	var m *nats.Msg
	err = b.unlessRefused(ctx, subject, func(ctx context.Context) (err error) {
		m, err = b.NC.RequestWithContext(ctx, subject, req)
		return err
	})
	if errors.Is(err, errDenied) {
		return fail(fmt.Errorf("this nats user may not; allow it %s", subject))
	}
	if err != nil {
		return fail(err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return fail(err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return nil, 0, jetstream.ErrKeyNotFound
	case resp.Error != nil:
		return fail(resp.Error)
	case resp.Message == nil:
		return fail(jetstream.ErrInvalidJetStreamResponse)
	}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return fail(err)
		}
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return nil, 0, jetstream.ErrKeyNotFound // deleted or purged
		}
	}
	return resp.Message.Data, resp.Message.Sequence, nil
}

// apiPrefix is where this connection's JetStream API requests go.
func (b *Bus) apiPrefix() string {
	o := b.JS.Options()
	switch {
	case o.Domain != "":
		return "$JS." + o.Domain + ".API."
	case o.APIPrefix != "":
		return strings.TrimSuffix(o.APIPrefix, ".") + "."
	}
	return jetstream.DefaultAPIPrefix
}
