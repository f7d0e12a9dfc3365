package openlineage

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Path is where the OpenLineage HTTP transport posts (its default endpoint).
const Path = "/api/v1/lineage"

// ServerConfig configures the HTTP endpoint.
type ServerConfig struct {
	// Listen is the endpoint's address; OpenLineage clients default to port 5000.
	Listen string
	// KeysFile holds API keys, one "<domain> <key>" per line (# comments).
	KeysFile string
	// Keys holds API keys as "<domain>:<key>,…" (for a Secret in the
	// environment). Keys are never logged, only their domain and a
	// fingerprint.
	Keys string
	// Anonymous, when set, is the domain of requests without a key
	// (meshpulse dev: platform). Empty refuses them with 401.
	Anonymous string
	// MaxBodyBytes bounds an event, after decompression: 413 beyond.
	MaxBodyBytes int
	// ProduceTimeout bounds the wait for Kafka's acknowledgement: 503 beyond.
	ProduceTimeout time.Duration
	// Namespaces are the job namespace rules, as the ingestor's (-openlineage-namespaces).
	Namespaces string
}

// RegisterFlags adds the endpoint's flags.
func (c *ServerConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", ":5000", "address of POST "+Path+" (env MESHPULSE_LISTEN)")
	fs.StringVar(&c.KeysFile, "api-keys-file", "", "file of API keys, one '<domain> <key>' per line (env MESHPULSE_API_KEYS_FILE)")
	fs.StringVar(&c.Keys, "api-keys", "", "API keys as '<domain>:<key>,…', e.g. from a Secret (env MESHPULSE_API_KEYS)")
	fs.StringVar(&c.Anonymous, "anonymous-domain", "", "domain of requests without a key; empty refuses them (env MESHPULSE_ANONYMOUS_DOMAIN)")
	fs.IntVar(&c.MaxBodyBytes, "max-body-bytes", 1<<20, "largest event accepted, after decompression (env MESHPULSE_MAX_BODY_BYTES)")
	fs.DurationVar(&c.ProduceTimeout, "produce-timeout", 10*time.Second, "longest wait for Kafka to acknowledge an event before answering 503 (env MESHPULSE_PRODUCE_TIMEOUT)")
	fs.StringVar(&c.Namespaces, "openlineage-namespaces", "", "OpenLineage job namespace rules pattern=domain,…, as the ingestor's (env MESHPULSE_OPENLINEAGE_NAMESPACES)")
}

// Validate reports every problem at once.
func (c *ServerConfig) Validate() error {
	var errs []error
	if c.Listen == "" {
		errs = append(errs, errors.New("listen address is required"))
	}
	if c.Anonymous != "" && !events.ValidDomain(c.Anonymous) {
		errs = append(errs, fmt.Errorf("anonymous domain %q must be lower-case letters, digits and dashes", c.Anonymous))
	}
	if c.MaxBodyBytes <= 0 || c.ProduceTimeout <= 0 {
		errs = append(errs, errors.New("max body bytes and produce timeout must be positive"))
	}
	if _, err := ParseNamespaceRules(c.Namespaces); err != nil {
		errs = append(errs, err)
	}
	if _, err := c.keys(); err != nil {
		errs = append(errs, err)
	}
	if c.KeysFile == "" && c.Keys == "" && c.Anonymous == "" {
		errs = append(errs, errors.New("no API keys and no anonymous domain: every request would be refused"))
	}
	return errors.Join(errs...)
}

// keys reads the API keys: key → domain.
func (c *ServerConfig) keys() (map[string]string, error) {
	keys := map[string]string{}
	var problems []string
	add := func(where, domain, key string) {
		switch {
		case !events.ValidDomain(domain):
			problems = append(problems, fmt.Sprintf("%s: domain %q must be lower-case letters, digits and dashes", where, domain))
		case len(key) < 16:
			problems = append(problems, fmt.Sprintf("%s: the key of %q is shorter than 16 characters", where, domain))
		case keys[key] != "" && keys[key] != domain:
			problems = append(problems, fmt.Sprintf("%s: one key is given to %q and %q", where, keys[key], domain))
		default:
			keys[key] = domain
		}
	}
	for i, part := range strings.Split(c.Keys, ",") {
		if part = strings.TrimSpace(part); part == "" {
			continue
		}
		domain, key, ok := strings.Cut(part, ":")
		if !ok {
			problems = append(problems, fmt.Sprintf("api-keys entry %d: want <domain>:<key>", i+1))
			continue
		}
		add(fmt.Sprintf("api-keys entry %d", i+1), strings.TrimSpace(domain), strings.TrimSpace(key))
	}
	if c.KeysFile != "" {
		f, err := os.Open(c.KeysFile)
		if err != nil {
			return nil, fmt.Errorf("api keys file: %w", err)
		}
		defer f.Close()
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			fields := strings.Fields(line)
			if len(fields) != 2 {
				problems = append(problems, fmt.Sprintf("%s line %d: want '<domain> <key>'", c.KeysFile, n))
				continue
			}
			add(fmt.Sprintf("%s line %d", c.KeysFile, n), fields[0], fields[1])
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("api keys file: %w", err)
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("api keys: %s", strings.Join(problems, "; "))
	}
	return keys, nil
}

// Server answers POST /api/v1/lineage: it authenticates the key, validates
// the event, publishes it unchanged to mesh.<domain>.openlineage and
// answers 201 only once Kafka has acknowledged it (acks=all). The
// ingestor does the rest, as for events from the Kafka transport.
type Server struct {
	cfg   ServerConfig
	spec  *Spec
	rules NamespaceRules
	keys  map[string]string // sha256(key) hex → domain
	cl    *kgo.Client
	log   zerolog.Logger
	m     *serverMetrics

	mu         sync.Mutex
	lastOK     time.Time
	failingFor time.Time // first failure since the last success
}

type serverMetrics struct {
	requests *prometheus.CounterVec
	latency  prometheus.Histogram
}

// NewServer builds the endpoint with a producing client of its own over
// kafkaOpts (brokers, SASL, TLS); Close releases it.
func NewServer(cfg ServerConfig, kafkaOpts []kgo.Opt, log zerolog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := append(append([]kgo.Opt(nil), kafkaOpts...),
		// 2xx means every in-sync replica has the event.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// An event Kafka cannot take in time fails (503) instead of
		// waiting forever with the client's request.
		kgo.RecordDeliveryTimeout(cfg.ProduceTimeout),
		// Concurrent requests share produce batches; a short linger keeps
		// the answer fast (franz-go's default is 10ms).
		kgo.ProducerLinger(time.Millisecond),
		kgo.ProducerBatchMaxBytes(int32(max(cfg.MaxBodyBytes+(64<<10), 1<<20))),
		// While Kafka is away, requests wait for room here up to their
		// deadline instead of growing the heap.
		kgo.MaxBufferedBytes(64<<20),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka client: %w", err)
	}
	spec, err := LoadSpec()
	if err != nil {
		cl.Close()
		return nil, err
	}
	rules, _ := ParseNamespaceRules(cfg.Namespaces)
	plain, _ := cfg.keys()
	hashed := map[string]string{}
	domains := map[string]int{}
	for k, d := range plain {
		hashed[keyHash(k)] = d
		domains[d]++
	}
	m := &serverMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "meshpulse_openlineage_requests_total", Help: "OpenLineage HTTP requests by status code."}, []string{"code"}),
		latency:  prometheus.NewHistogram(prometheus.HistogramOpts{Name: "meshpulse_openlineage_request_seconds", Help: "Time to answer a POST, Kafka acknowledgement included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	log.Info().Int("keys", len(plain)).Interface("domains", domains).Str("anonymous", cfg.Anonymous).Msg("openlineage api keys loaded")
	return &Server{cfg: cfg, spec: spec, rules: rules, keys: hashed, cl: cl, log: log, m: m, lastOK: time.Now()}, nil
}

// Close releases the Kafka client, once Run has returned.
func (s *Server) Close() { s.cl.Close() }

func keyHash(k string) string {
	h := sha256.Sum256([]byte(k))
	return hex.EncodeToString(h[:])
}

// Run serves until ctx ends; announce, when set, gets the bound address.
func (s *Server) Run(ctx context.Context, announce func(addr string)) error {
	l, err := net.Listen("tcp", s.cfg.Listen)
	if err != nil {
		return fmt.Errorf("openlineage listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: 2 * time.Minute}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	s.log.Info().Str("url", "http://"+l.Addr().String()+Path).Msg("serving OpenLineage")
	if announce != nil {
		announce(l.Addr().String())
	}
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Healthy fails while Kafka has refused every event for a minute.
func (s *Server) Healthy() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.failingFor.IsZero() && time.Since(s.failingFor) > time.Minute {
		return fmt.Errorf("kafka has acknowledged no event since %s", s.lastOK.Format(time.RFC3339))
	}
	return nil
}

// Answer is the JSON body of every response.
type Answer struct {
	Status   string   `json:"status"`             // accepted, or why not
	EventID  string   `json:"event_id,omitempty"` // meshpulse's id of the event
	Topic    string   `json:"topic,omitempty"`
	Error    string   `json:"error,omitempty"`
	Problems []string `json:"problems,omitempty"` // validation errors, each with its place in the event
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	code, ans := s.handle(r)
	w.Header().Set("Content-Type", "application/json")
	switch code {
	case http.StatusUnauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="meshpulse"`)
	case http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "5")
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodPost)
	}
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(ans)
	s.m.requests.WithLabelValues(fmt.Sprint(code)).Inc()
	s.m.latency.Observe(time.Since(start).Seconds())
}

func (s *Server) handle(r *http.Request) (int, Answer) {
	if r.Method != http.MethodPost {
		return http.StatusMethodNotAllowed, Answer{Status: "refused", Error: "POST an OpenLineage event"}
	}
	domain, code, err := s.authenticate(r)
	if err != nil {
		return code, Answer{Status: "refused", Error: err.Error()}
	}
	body, code, err := s.read(r)
	if err != nil {
		return code, Answer{Status: "refused", Error: err.Error()}
	}
	ev, err := s.spec.Parse(body)
	if err != nil {
		var ie *InvalidError
		if errors.As(err, &ie) {
			return http.StatusBadRequest, Answer{Status: "invalid", Error: "the event does not follow the OpenLineage " + SpecVersion + " schemas", Problems: ie.Problems}
		}
		return http.StatusBadRequest, Answer{Status: "invalid", Error: err.Error()}
	}
	id, err := s.spec.Identify(ev, domain, s.rules)
	if err != nil {
		return http.StatusBadRequest, Answer{Status: "invalid", Error: err.Error()}
	}
	if domain != events.PlatformEmitter && id.Domain != domain {
		return http.StatusForbidden, Answer{Status: "refused", Error: fmt.Sprintf("job namespace %q belongs to domain %q; this key speaks for %q", id.JobNamespace, id.Domain, domain)}
	}
	topic := events.Topic(domain, events.FamilyOpenLineage)
	// The key keeps a job's events (a run's START before its COMPLETE) in
	// one partition, in order.
	rec := &kgo.Record{Topic: topic, Key: []byte(id.Key), Value: body}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.ProduceTimeout)
	defer cancel()
	// Not ProduceSync: a record already sent to a broker that then died is
	// retried by the client past any deadline (it cannot know whether the
	// broker wrote it). The answer is then 503; should the record land
	// later after all, the client's retry is the same bytes, the same
	// event id, and is stored once.
	acked := make(chan error, 1)
	s.cl.Produce(ctx, rec, func(_ *kgo.Record, err error) { acked <- err })
	select {
	case err = <-acked:
	case <-ctx.Done():
		err = fmt.Errorf("no acknowledgement within %s", s.cfg.ProduceTimeout)
	}
	if err != nil {
		s.failed()
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return http.StatusServiceUnavailable, Answer{Status: "unavailable", Error: fmt.Sprintf("topic %s does not exist: create it with meshpulse migrate -domains %s", topic, domain)}
		}
		s.log.Warn().Err(err).Str("topic", topic).Msg("kafka did not acknowledge an OpenLineage event")
		return http.StatusServiceUnavailable, Answer{Status: "unavailable", Error: "kafka did not acknowledge the event; retry: " + err.Error()}
	}
	s.succeeded()
	return http.StatusCreated, Answer{Status: "accepted", EventID: EventID(body), Topic: topic}
}

func (s *Server) authenticate(r *http.Request) (string, int, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		if s.cfg.Anonymous != "" {
			return s.cfg.Anonymous, 0, nil
		}
		return "", http.StatusUnauthorized, errors.New("an API key is required: Authorization: Bearer <key>")
	}
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
		return "", http.StatusUnauthorized, errors.New("the Authorization header must be 'Bearer <key>'")
	}
	domain, ok := s.keys[keyHash(strings.TrimSpace(key))]
	if !ok {
		return "", http.StatusUnauthorized, errors.New("unknown API key")
	}
	return domain, 0, nil
}

// read returns the body, decompressed, within MaxBodyBytes.
func (s *Server) read(r *http.Request) ([]byte, int, error) {
	limit := int64(s.cfg.MaxBodyBytes)
	if r.ContentLength > limit && r.Header.Get("Content-Encoding") == "" {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("event of %d bytes is larger than the limit of %d", r.ContentLength, limit)
	}
	var in io.Reader = http.MaxBytesReader(nil, r.Body, limit+1)
	switch enc := strings.ToLower(r.Header.Get("Content-Encoding")); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(in)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("gzip body: %w", err)
		}
		defer zr.Close()
		in = zr
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("content encoding %q: gzip or none", enc)
	}
	body, err := io.ReadAll(io.LimitReader(in, limit+1))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) || int64(len(body)) > limit {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("event larger than the limit of %d bytes", limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("read body: %w", err)
	}
	return body, 0, nil
}

func (s *Server) failed() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failingFor.IsZero() {
		s.failingFor = time.Now()
	}
}

func (s *Server) succeeded() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastOK, s.failingFor = time.Now(), time.Time{}
}
