package bus

import (
	"context"
	"encoding/json"
	"fmt"

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
	bucket := rs.KV.Bucket()
	req, err := json.Marshal(struct {
		LastFor string `json:"last_by_subj"`
	}{"$KV." + bucket + "." + key})
	if err != nil {
		return 0, err
	}
	m, err := rs.Bus.NC.RequestWithContext(ctx, jetstream.DefaultAPIPrefix+"STREAM.MSG.GET.KV_"+bucket, req)
	if err != nil {
		return 0, fmt.Errorf("read %s from its leader: %w", key, err)
	}
	var resp msgGetResponse
	if err := json.Unmarshal(m.Data, &resp); err != nil {
		return 0, fmt.Errorf("read %s from its leader: %w", key, err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, nil
	case resp.Error != nil:
		return 0, fmt.Errorf("read %s from its leader: %w", key, resp.Error)
	case resp.Message == nil:
		return 0, fmt.Errorf("read %s from its leader: %w", key, jetstream.ErrInvalidJetStreamResponse)
	}
	if len(resp.Message.Header) > 0 {
		h, err := nats.DecodeHeadersMsg(resp.Message.Header)
		if err != nil {
			return 0, fmt.Errorf("read %s from its leader: %w", key, err)
		}
		if h.Get("KV-Operation") != "" || h.Get(jetstream.MarkerReasonHeader) != "" {
			return 0, nil // deleted or purged: as if new, as Read has it
		}
	}
	rs.Decode(key, resp.Message.Data, rec)
	return resp.Message.Sequence, nil
}
