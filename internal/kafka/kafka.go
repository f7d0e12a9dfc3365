// Package kafka holds what every meshpulse program needs to reach Kafka:
// the connection config (brokers, SASL, TLS) turned into franz-go options,
// and explicit topic creation (meshpulse never relies on auto-creation).
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Config says how to reach the Kafka cluster.
type Config struct {
	Brokers       string // comma-separated host:port
	SASLMechanism string // "", PLAIN, SCRAM-SHA-256, SCRAM-SHA-512
	SASLUser      string
	SASLPassword  string // never logged
	TLS           bool
	Partitions    int // partition count of topics meshpulse creates
	Replication   int // replication factor of topics meshpulse creates
}

// RegisterFlags adds the Kafka flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Brokers, "kafka", "", "Kafka bootstrap brokers, comma-separated (env MESHPULSE_KAFKA)")
	fs.StringVar(&c.SASLMechanism, "kafka-sasl-mechanism", "", "SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (env MESHPULSE_KAFKA_SASL_MECHANISM)")
	fs.StringVar(&c.SASLUser, "kafka-sasl-user", "", "SASL user (env MESHPULSE_KAFKA_SASL_USER)")
	fs.StringVar(&c.SASLPassword, "kafka-sasl-password", "", "SASL password (env MESHPULSE_KAFKA_SASL_PASSWORD)")
	fs.BoolVar(&c.TLS, "kafka-tls", false, "use TLS to Kafka (env MESHPULSE_KAFKA_TLS)")
	fs.IntVar(&c.Partitions, "kafka-partitions", 6, "partitions of topics meshpulse creates (env MESHPULSE_KAFKA_PARTITIONS)")
	fs.IntVar(&c.Replication, "kafka-replication", 1, "replication factor of topics meshpulse creates (env MESHPULSE_KAFKA_REPLICATION)")
}

// Errors returned by Validate.
var (
	ErrNoBrokers     = errors.New("kafka brokers are required")
	ErrSASLMechanism = errors.New("kafka SASL mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	ErrSASLUser      = errors.New("kafka SASL needs a user and a password")
	ErrPartitions    = errors.New("kafka partitions and replication must be at least 1")
)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.Brokers) == "" {
		errs = append(errs, ErrNoBrokers)
	}
	switch c.SASLMechanism {
	case "":
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		if c.SASLUser == "" || c.SASLPassword == "" {
			errs = append(errs, ErrSASLUser)
		}
	default:
		errs = append(errs, fmt.Errorf("%w: got %q", ErrSASLMechanism, c.SASLMechanism))
	}
	if c.Partitions < 1 || c.Replication < 1 {
		errs = append(errs, ErrPartitions)
	}
	return errors.Join(errs...)
}

// SeedBrokers splits Brokers.
func (c *Config) SeedBrokers() []string {
	var out []string
	for _, b := range strings.Split(c.Brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// Opts returns the client options for connection and authentication.
func (c *Config) Opts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.SeedBrokers()...)}
	switch c.SASLMechanism {
	case "PLAIN":
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case "SCRAM-SHA-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	if c.TLS {
		opts = append(opts, kgo.DialTLSConfig(&tls.Config{MinVersion: tls.VersionTLS12}))
	}
	return opts
}

// DomainTopics lists the inbound topics of the given emitters: the Avro
// families and OpenLineage.
func DomainTopics(emitters []string) []string {
	var out []string
	for _, e := range emitters {
		for _, f := range events.InboundFamilies {
			out = append(out, events.Topic(e, f))
		}
		out = append(out, events.Topic(e, events.FamilyOpenLineage))
	}
	return out
}

// withMinInsync adds min.insync.replicas to a topic's configs when it has
// three replicas or more: a majority of them. Producers write with acks=all
// (franz-go's default), so an acknowledged record is then on a majority,
// and a topic stays writable with one broker of three down.
func withMinInsync(configs map[string]*string, replication int) map[string]*string {
	if replication < 3 {
		return configs
	}
	out := map[string]*string{}
	for k, v := range configs {
		out[k] = v
	}
	n := strconv.Itoa(replication/2 + 1)
	out["min.insync.replicas"] = &n
	return out
}

// EnsureTopics creates the topics that do not exist yet. Topics that exist
// are left as they are, whatever their partition count. A principal that
// may not create topics (a least-privilege service) only checks that they
// exist; a topic it may not even describe is an authorisation error, said
// at once.
func EnsureTopics(ctx context.Context, cl *kgo.Client, partitions, replication int, topics ...string) error {
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var plain, compacted, changes []string
	for _, t := range topics {
		switch t {
		case events.TopicScores:
			compacted = append(compacted, t)
		case TopicChanges:
			// The change feed is only ever read from its end: a day of it
			// is more than any scorer needs.
			changes = append(changes, t)
		default:
			plain = append(plain, t)
		}
	}
	var errs []error
	mayCreate := true
	create := func(configs map[string]*string, ts []string) {
		if len(ts) == 0 {
			return
		}
		resp, err := adm.CreateTopics(ctx, int32(partitions), int16(replication), withMinInsync(configs, replication), ts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("create topics: %w", err))
			return
		}
		for _, r := range resp.Sorted() {
			// A least-privilege principal may not create topics; that is
			// fine as long as they exist (checked below).
			if errors.Is(r.Err, kerr.TopicAuthorizationFailed) || errors.Is(r.Err, kerr.ClusterAuthorizationFailed) {
				mayCreate = false
				continue
			}
			if r.Err != nil && !errors.Is(r.Err, kerr.TopicAlreadyExists) {
				errs = append(errs, fmt.Errorf("create topic %s: %w", r.Topic, r.Err))
			}
		}
	}
	// A topic that is still being deleted answers "already exists" and then
	// vanishes, and a new topic takes a moment to reach every broker's
	// metadata: create until every topic is listed with its partitions.
	for {
		errs = nil
		create(nil, plain)
		// mesh.scores keeps the latest alert of every product forever: the
		// scorer rebuilds its state from it, so it is compacted, not expired.
		compact := "compact"
		create(map[string]*string{"cleanup.policy": &compact}, compacted)
		day := "86400000"
		create(map[string]*string{"retention.ms": &day}, changes)
		if err := errors.Join(errs...); err != nil {
			return err
		}
		listed, err := adm.ListTopics(ctx, topics...)
		var missing []string
		if err == nil {
			for _, t := range topics {
				d, ok := listed[t]
				switch {
				case ok && (errors.Is(d.Err, kerr.TopicAuthorizationFailed) || errors.Is(d.Err, kerr.ClusterAuthorizationFailed)):
					return fmt.Errorf("not authorised to describe topic %s (the principal needs Describe on it; see deployments/kafka-security.md): %w", t, d.Err)
				case !ok || d.Err != nil || len(d.Partitions) == 0:
					missing = append(missing, t)
				}
			}
			if len(missing) == 0 {
				return nil
			}
			if !mayCreate {
				return fmt.Errorf("topics %v do not exist and this principal may not create them: run meshpulse migrate -kafka … -domains … as an administrator", missing)
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not all visible after creation: %w", missing, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// IngestorTopics are the topics an ingestor needs to exist: the dead-letter
// topic and the change feed it writes, the platform's inbound topics, and
// the named domains'.
func IngestorTopics(domains []string) []string {
	return append([]string{events.TopicDeadLetter, TopicChanges}, DomainTopics(append([]string{events.PlatformEmitter}, domains...))...)
}

// ScorerTopics are the topics a scorer needs: its alerts and the change feed.
func ScorerTopics() []string { return []string{events.TopicScores, TopicChanges} }

// CoreTopics are the topics meshpulse itself needs; the platform emitter's
// inbound topics are among them since shared tooling belongs to no domain.
func CoreTopics() []string {
	return append([]string{events.TopicDeadLetter, events.TopicScores, TopicChanges}, DomainTopics([]string{events.PlatformEmitter})...)
}

// OpenLineageTopics are the topics the OpenLineage HTTP endpoint publishes
// to: mesh.<domain>.openlineage of the platform and the given domains.
func OpenLineageTopics(domains []string) []string {
	var out []string
	for _, d := range append([]string{events.PlatformEmitter}, domains...) {
		out = append(out, events.Topic(d, events.FamilyOpenLineage))
	}
	return out
}
