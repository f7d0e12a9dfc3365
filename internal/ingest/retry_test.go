package ingest_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/ingest"
	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// flakyWriter fails while down is set, counting attempts.
type flakyWriter struct {
	mu       sync.Mutex
	down     bool
	attempts int
	rows     int
}

func (w *flakyWriter) Insert(_ context.Context, parts []*store.Batch) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.attempts++
	if w.down {
		return errors.New("clickhouse is down")
	}
	for _, p := range parts {
		w.rows += p.Len()
	}
	return nil
}

func (w *flakyWriter) DatasetOwners(context.Context) (map[string]store.Claim, error) { return nil, nil }

func (w *flakyWriter) state() (attempts, rows int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.attempts, w.rows
}

// TestSinkDownNeverCommits: while inserts fail, the ingestor retries and
// commits nothing; once they succeed, every record is stored and committed.
func TestSinkDownNeverCommits(t *testing.T) {
	seeds := testenv.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, 2, 1, kafka.CoreTopics()...); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	p, _ := events.NewProducer(cl, codecs, "platform")
	var evs []events.Event
	for range 100 {
		evs = append(evs, usage(orders, "u", ""))
	}
	if err := p.ProduceSync(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}

	w := &flakyWriter{down: true}
	cfg := ingest.Defaults()
	cfg.Group = "g-flaky"
	cfg.FlushInterval = 50 * time.Millisecond
	kc := kafka.Config{Brokers: strings.Join(seeds, ","), Partitions: 2, Replication: 1}
	ing, err := ingest.New(cfg, kc.Opts(), w, codecs, zerolog.Nop(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ing.Run(ctx) }()

	adm := kadm.NewClient(cl)
	committed := func() int64 {
		offs, err := adm.FetchOffsets(context.Background(), "g-flaky")
		if err != nil {
			return -1
		}
		var sum int64
		offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
		return sum
	}
	deadline := time.Now().Add(20 * time.Second)
	for a, _ := w.state(); a < 3; a, _ = w.state() {
		if time.Now().After(deadline) {
			t.Fatal("ingestor never tried to insert")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if c := committed(); c > 0 {
		t.Fatalf("committed %d offsets while ClickHouse was down", c)
	}
	w.mu.Lock()
	w.down = false
	w.mu.Unlock()
	for committed() != 100 {
		if time.Now().After(deadline) {
			t.Fatalf("committed %d of 100 after recovery", committed())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, rows := w.state(); rows != 100 {
		t.Fatalf("stored %d rows, want 100", rows)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
