// Package bus is the plumbing every service shares to talk over NATS
// JetStream: an embedded server for one box, a connection to a cluster
// otherwise, the streams and buckets made ready, idempotent publishing, and
// the one consume loop that owns the ack policy.
package bus

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tocsin-alarm/tocsin/pkg/events"
)

// Bus is one connection to JetStream.
type Bus struct {
	NC     *nats.Conn
	JS     jetstream.JetStream
	log    *slog.Logger
	denied *denials

	// TakeOver is how long an exclusive consumer stays with an instance
	// that died before a standing-by one takes over (see
	// Consumer.Exclusive); DefaultTakeOver if zero. Set it before
	// consuming.
	TakeOver time.Duration

	// Limits are what Ensure and Setup give the streams and buckets;
	// the config's defaults where zero. Set them before either.
	Limits Limits
}

// DefaultTakeOver is how long a standby waits by default to take over from
// an instance that died without a word: long enough that a live instance
// under load keeps its place, short next to an outage's first minutes.
const DefaultTakeOver = 5 * time.Second

func (b *Bus) takeOver() time.Duration {
	if b.TakeOver > 0 {
		return b.TakeOver
	}
	return DefaultTakeOver
}

// EmbeddedOptions configure a JetStream server inside the process.
type EmbeddedOptions struct {
	Dir string // where streams are stored; survives restarts
	// Listen is host:port for other processes (tocsin status, a
	// standalone service); "" keeps the server in-process only, with no
	// socket at all. Port 0 is any free port.
	Listen string
	// Client, when set, is the one user that may connect over Listen;
	// connections in this process need no credentials, and nobody can
	// connect as them from outside. A Listen needs it, unless Open.
	Client *Credentials
	// Open lets a loopback Listen go without a Client: whoever reaches the
	// port may do anything. Only a test or a benchmark, on a bus of its
	// own, may ask for it; another user of the box could otherwise
	// acknowledge incidents, post to the public or delete streams.
	Open bool
	// TLS, when set, is required of every connection over Listen.
	TLS *tls.Config
	// Limits are the room the server gives its streams (the config's
	// defaults where zero): Ensure's streams fit in it exactly.
	Limits Limits
}

// Credentials are a NATS user name and password.
type Credentials struct {
	User, Password string
}

// inProcessUser is the user every connection from within the process is,
// without presenting credentials; it may not connect over a socket.
const inProcessUser = "tocsin"

// StartEmbedded starts a JetStream server in this process and waits until it
// accepts connections. Call Shutdown and WaitForShutdown to stop it.
//
// A server that listens must have a Client (or be Open, for a test), and
// beyond loopback TLS too: the bus can post staff updates, acknowledge
// incidents and delete streams.
func StartEmbedded(opts EmbeddedOptions) (*server.Server, error) {
	limits := opts.Limits.orDefault()
	so := &server.Options{
		ServerName: "tocsin",
		JetStream:  true,
		StoreDir:   opts.Dir,
		NoSigs:     true,
		Host:       "127.0.0.1",
		Port:       -1,
		// The room Ensure's streams are sized to, rather than what the
		// disk has free when the server starts.
		JetStreamMaxStore:  limits.MaxStore,
		JetStreamMaxMemory: limits.MaxMemory,
	}
	if opts.Listen == "" {
		so.DontListen = true
	} else {
		host, port, err := splitHostPort(opts.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", opts.Listen, err)
		}
		if port == 0 {
			port = server.RANDOM_PORT // nats-server takes 0 for its default port
		}
		if !IsLoopback(host) && (opts.TLS == nil || opts.Client == nil) {
			return nil, fmt.Errorf("nats listen address %q is not a loopback address: other hosts could reach the bus, so it needs TLS and credentials", opts.Listen)
		}
		if opts.Client == nil && !opts.Open {
			return nil, fmt.Errorf("nats listen address %q without client credentials: any user of the box could reach the bus", opts.Listen)
		}
		so.Host, so.Port = host, port
		so.TLSConfig = opts.TLS
	}
	if c := opts.Client; c != nil {
		if c.User == "" || c.User == inProcessUser || c.Password == "" {
			return nil, fmt.Errorf("nats client credentials: the user needs a name other than %q and a password", inProcessUser)
		}
		so.Users = []*server.User{
			// The connection types are jwt.ConnectionTypeInProcess and
			// jwt.ConnectionTypeStandard.
			{Username: inProcessUser, AllowedConnectionTypes: map[string]struct{}{"IN_PROCESS": {}}},
			{Username: c.User, Password: c.Password, AllowedConnectionTypes: map[string]struct{}{"STANDARD": {}}},
		}
		so.NoAuthUser = inProcessUser
	}
	ns, err := server.NewServer(so)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats server: %w", err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats server not ready after 10s (is %s in use, or %s not writable?)", opts.Listen, opts.Dir)
	}
	return ns, nil
}

// Connect connects to a NATS server by URL, or to an embedded one when ns is
// not nil (without a socket). name shows in the server's connection list.
func Connect(serverURL string, ns *server.Server, name string, log *slog.Logger, extra ...nats.Option) (*Bus, error) {
	denied := &denials{}
	opts := append([]nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1), // a service outlives a cluster restart
		nats.ReconnectWait(time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from nats, reconnecting", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("reconnected to nats", "url", nc.ConnectedUrlRedacted()) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrPermissionViolation) {
				// The server names the subject: the operator can see
				// which permission the user lacks.
				if denied.report(err.Error()) {
					log.Debug("nats refused this user a stream request", "err", err)
					return
				}
				log.Error("nats refused this user", "err", err)
				return
			}
			log.Warn("nats error", "err", err)
		}),
	}, extra...)
	if ns != nil {
		opts = append(opts, nats.InProcessServer(ns))
		// In-process, TLS is neither needed nor asked for; a tls:// URL
		// would have the client insist on it.
		_, hostPort, _ := strings.Cut(ns.ClientURL(), "://")
		serverURL = "nats://" + hostPort
	}
	nc, err := nats.Connect(serverURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats at %s: %w", redactURLs(servers(serverURL, opts)), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	return &Bus{NC: nc, JS: js, log: log, denied: denied}, nil
}

// Once are the connection options of a command that does one thing and
// exits: it gives up at once instead of waiting for the server to return.
func Once() []nats.Option {
	return []nats.Option{nats.MaxReconnects(0), nats.Timeout(5 * time.Second)}
}

// servers is where a connection with opts goes: an option may have
// replaced the URL it was given (the one in a credentials file, say).
func servers(serverURL string, opts []nats.Option) string {
	o := nats.GetDefaultOptions()
	o.Servers = []string{serverURL}
	for _, opt := range opts {
		if opt != nil {
			_ = opt(&o)
		}
	}
	return strings.Join(o.Servers, ",")
}

// redactURLs hides the passwords in a comma-separated list of server URLs.
func redactURLs(list string) string {
	parts := strings.Split(list, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil {
			parts[i] = u.Redacted()
		} else {
			parts[i] = "(unparseable URL)"
		}
	}
	return strings.Join(parts, ",")
}

// Close drains the connection: pending publishes are flushed first.
func (b *Bus) Close() { b.CloseWithin(time.Minute) }

// CloseWithin drains the connection, flushing pending publishes, for d at
// the most; then it closes it, whatever is left.
func (b *Bus) CloseWithin(d time.Duration) {
	if err := b.NC.Drain(); err != nil {
		b.NC.Close()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !b.NC.IsClosed() {
		select {
		case <-t.C:
			b.NC.Close()
		case <-tick.C:
		}
	}
}

// Ensure creates every stream and bucket, or updates them to the current
// configuration. It fails, naming the stream, when an existing one cannot be
// changed in place (a different retention, say). A stream already as it
// should be is left alone: every service ensures at start, and updating a
// stream while others set up consumers on it is needless churn.
//
// A service on a cluster runs as a user that may not create or change
// streams: "tocsin setup" does that once, as the admin user. When the server
// refuses, Ensure only checks that every stream and bucket is there: it
// warns of one that differs, and fails, saying to run tocsin setup, when one
// is missing.
func (b *Bus) Ensure(ctx context.Context, replicas int) error {
	return b.ensure(ctx, replicas, false)
}

// Setup is Ensure for the operator who sets the streams up: a refusal is an
// error, not a reason to settle for what is there.
func (b *Bus) Setup(ctx context.Context, replicas int) error {
	return b.ensure(ctx, replicas, true)
}

// errNoPeers is the code of the cluster's answer that too few peers are
// online to place a stream's copies (nats-server's JSClusterNoPeersErr).
const errNoPeers jetstream.ErrorCode = 10005

// placementWait bounds how long setting up a stream waits for the cluster
// to have the peers its copies need: a service started while a node
// restarts, or before a new cluster has formed, sets up once they are back.
const placementWait = 30 * time.Second

// placementAttempt bounds one attempt to create or change a stream: on a
// cluster just formed, the answer to a create can be lost while its routes
// settle, and waiting for it would use up the whole start.
const placementAttempt = 5 * time.Second

// whenPlaceable runs change (or a look-up), each attempt bounded by
// attempt, and again while the cluster answers that too few peers are
// online to place the copies or does not answer in time, for at most
// placementWait.
func whenPlaceable(ctx context.Context, attempt time.Duration, change func(context.Context) error) error {
	deadline := time.Now().Add(placementWait)
	for {
		actx, cancel := context.WithTimeout(ctx, attempt)
		err := change(actx)
		cancel()
		var apiErr *jetstream.APIError
		noPeers := errors.As(err, &apiErr) && apiErr.ErrorCode == errNoPeers
		unanswered := errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil
		if err == nil || !noPeers && !unanswered || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (b *Bus) ensure(ctx context.Context, replicas int, strict bool) error {
	mayChange := true
	var missing []string
	// settle is what happens to a stream or bucket that is missing or
	// differs: change it while the server lets us, else take stock.
	// replicasOnly says that what differs is only the number of copies,
	// which is for tocsin setup to choose: a service started without
	// --replicas has nothing to warn of.
	settle := func(kind, name string, exists, replicasOnly bool, change func(context.Context) error) error {
		if mayChange {
			err := b.unlessDenied(ctx, func(ctx context.Context) error { return whenPlaceable(ctx, placementAttempt, change) })
			if err == nil {
				b.log.Info("nats "+kind+" set up", kind, name, "replicas", replicas)
				return nil
			}
			if !errors.Is(err, errDenied) {
				return fmt.Errorf("%s %s: %w", kind, name, err)
			}
			if strict {
				return fmt.Errorf("%s %s: this nats user may not create or change streams; connect as the admin user", kind, name)
			}
			mayChange = false
		}
		if !exists {
			missing = append(missing, kind+" "+name)
		} else if !replicasOnly {
			b.log.Warn("nats "+kind+" differs from what this version sets up; run tocsin setup as the admin user", kind, name)
		}
		return nil
	}
	limits := b.Limits.orDefault()
	streams, buckets := events.SizedConfigs(replicas, limits.MaxStore, limits.MaxMemory)
	for _, cfg := range streams {
		var s jetstream.Stream
		err := b.unlessDenied(ctx, func(ctx context.Context) error {
			return whenPlaceable(ctx, placementAttempt, func(ctx context.Context) (err error) {
				s, err = b.JS.Stream(ctx, cfg.Name)
				return err
			})
		})
		switch {
		case errors.Is(err, errDenied):
			return fmt.Errorf("stream %s: this nats user may not look it up; allow it $JS.API.STREAM.INFO.%s", cfg.Name, cfg.Name)
		case errors.Is(err, jetstream.ErrStreamNotFound):
			err = settle("stream", cfg.Name, false, false, func(ctx context.Context) error {
				_, err := b.JS.CreateStream(ctx, cfg)
				if err != nil && !errors.Is(err, errDenied) {
					// Another process may have made it meanwhile: the
					// server can refuse the second for want of room
					// before it sees the first. One as it should be will
					// do.
					if s, lerr := b.JS.Stream(ctx, cfg.Name); lerr == nil && sameStream(s.CachedInfo().Config, cfg) {
						return nil
					}
				}
				return err
			})
		case err == nil && !sameStream(s.CachedInfo().Config, cfg):
			have := s.CachedInfo().Config
			have.Replicas = cfg.Replicas
			err = settle("stream", cfg.Name, true, sameStream(have, cfg), func(ctx context.Context) error {
				_, err := b.JS.UpdateStream(ctx, cfg)
				return err
			})
		}
		if err != nil {
			return fmt.Errorf("stream %s: %w", cfg.Name, err)
		}
	}
	for _, cfg := range buckets {
		var kv jetstream.KeyValue
		err := b.unlessDenied(ctx, func(ctx context.Context) error {
			return whenPlaceable(ctx, placementAttempt, func(ctx context.Context) (err error) {
				kv, err = b.JS.KeyValue(ctx, cfg.Bucket)
				return err
			})
		})
		if errors.Is(err, errDenied) {
			return fmt.Errorf("bucket %s: this nats user may not look it up; allow it $JS.API.STREAM.INFO.KV_%s", cfg.Bucket, cfg.Bucket)
		}
		exists, replicasOnly := err == nil, false
		if err == nil {
			var st jetstream.KeyValueStatus
			if st, err = kv.Status(ctx); err == nil && sameBucket(st.Config(), cfg) {
				if st.Config().Replicas == cfg.Replicas {
					continue
				}
				replicasOnly = true
			}
		} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return fmt.Errorf("bucket %s: %w", cfg.Bucket, err)
		}
		if err := settle("bucket", cfg.Bucket, exists, replicasOnly, func(ctx context.Context) error {
			_, err := b.JS.CreateOrUpdateKeyValue(ctx, cfg)
			if err != nil && !errors.Is(err, errDenied) {
				// Made or changed meanwhile by another process, as for a
				// stream.
				if kv, lerr := b.JS.KeyValue(ctx, cfg.Bucket); lerr == nil {
					if st, serr := kv.Status(ctx); serr == nil && sameBucket(st.Config(), cfg) && st.Config().Replicas == cfg.Replicas {
						return nil
					}
				}
			}
			return err
		}); err != nil {
			return err
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s missing, and this nats user may not create them: run \"tocsin setup --nats URL --replicas N\" as the admin user first", strings.Join(missing, ", "))
	}
	return nil
}

// sameStream compares the settings Tocsin chooses.
func sameStream(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) && have.Retention == want.Retention &&
		have.Storage == want.Storage && have.Replicas == want.Replicas && have.MaxAge == want.MaxAge &&
		have.Duplicates == want.Duplicates && have.AllowMsgTTL == want.AllowMsgTTL && have.Description == want.Description &&
		have.MaxBytes == want.MaxBytes && have.MaxMsgSize == want.MaxMsgSize && have.Discard == want.Discard
}

// sameBucket compares the settings Tocsin chooses, but for the copies.
func sameBucket(have, want jetstream.KeyValueConfig) bool {
	return have.TTL == want.TTL && uint8(have.History) == want.History &&
		have.MaxBytes == want.MaxBytes && have.MaxValueSize == want.MaxValueSize
}

// KV opens a bucket that Ensure made.
func (b *Bus) KV(ctx context.Context, bucket string) (jetstream.KeyValue, error) {
	kv, err := b.JS.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("open bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Publish stores an event on its subject with its id as the message id, so
// that publishing the same event again within the stream's duplicate window
// stores it once. It returns once JetStream has stored it.
func (b *Bus) Publish(ctx context.Context, ev events.Event, opts ...jetstream.PublishOpt) error {
	data, err := ev.Marshal()
	if err != nil {
		return err
	}
	opts = append([]jetstream.PublishOpt{jetstream.WithMsgID(ev.ID)}, opts...)
	if err := whileInProcess(ctx, func() error { _, err := b.JS.Publish(ctx, ev.Subject(), data, opts...); return err }); err != nil {
		return fmt.Errorf("publish %s %s: %w", ev.Type, ev.ID, storeError(streamOf(ev.Subject()), err))
	}
	return nil
}

// IsConflict reports whether a key-value write lost a race with another
// writer (a compare-and-set on a stale revision, or a create of a key that
// exists). A replicated bucket says so with another code than a bucket on
// one server: on a cluster, a lost race must be read again at once like
// anywhere else, not failed and redelivered.
func IsConflict(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence || InFlight(err) ||
		errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
}

// InFlight reports whether a conflict is with a write to the key still in
// flight on a cluster (code 10164), which may yet fail, rather than with
// one stored.
func InFlight(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}
