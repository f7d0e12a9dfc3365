package events

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Producer publishes events of one emitter over a franz-go client. It fills
// event_id and event_time when unset, stamps the emitter, validates, picks
// the topic mesh.<emitter>.<family> and the key (the URN the event is about).
//
// Records are produced asynchronously; call Flush before exiting. The client
// should keep franz-go's default idempotent producer so retries do not
// duplicate records in Kafka.
type Producer struct {
	client  *kgo.Client
	codecs  *Codecs
	emitter string
}

// NewProducer returns a Producer for emitter (a domain name or "platform").
func NewProducer(client *kgo.Client, codecs *Codecs, emitter string) (*Producer, error) {
	if !ValidDomain(emitter) {
		return nil, fmt.Errorf("emitter %q must be a domain name (lower-case letters, digits, dashes) or %q", emitter, PlatformEmitter)
	}
	return &Producer{client: client, codecs: codecs, emitter: emitter}, nil
}

// Emitter is the domain (or platform) the producer publishes for.
func (p *Producer) Emitter() string { return p.emitter }

// Record builds the Kafka record for ev without producing it.
func (p *Producer) Record(ev Event) (*kgo.Record, error) {
	h := ev.Header()
	if h.EventID == "" {
		h.EventID = uuid.NewString()
	}
	if h.EventTime.IsZero() {
		h.EventTime = time.Now().UTC().Truncate(time.Millisecond)
	}
	if h.Emitter == "" {
		h.Emitter = p.emitter
	}
	if h.Emitter != p.emitter {
		return nil, fmt.Errorf("event emitter %q differs from producer emitter %q", h.Emitter, p.emitter)
	}
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	value, err := p.codecs.Encode(ev)
	if err != nil {
		return nil, err
	}
	return &kgo.Record{Topic: Topic(p.emitter, ev.Family()), Key: []byte(ev.Key()), Value: value}, nil
}

// Produce validates, encodes and sends ev asynchronously; done (may be nil)
// is called with the outcome.
func (p *Producer) Produce(ctx context.Context, ev Event, done func(error)) error {
	rec, err := p.Record(ev)
	if err != nil {
		return err
	}
	p.client.Produce(ctx, rec, func(_ *kgo.Record, err error) {
		if done != nil {
			done(err)
		}
	})
	return nil
}

// ProduceSync validates, encodes and sends events, waiting for every ack.
func (p *Producer) ProduceSync(ctx context.Context, evs ...Event) error {
	recs := make([]*kgo.Record, 0, len(evs))
	for i, ev := range evs {
		rec, err := p.Record(ev)
		if err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
		recs = append(recs, rec)
	}
	return p.client.ProduceSync(ctx, recs...).FirstErr()
}

// Flush waits until every produced record is acknowledged.
func (p *Producer) Flush(ctx context.Context) error { return p.client.Flush(ctx) }
