package ingest

import (
	"context"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// FuzzRecord runs arbitrary record values on arbitrary inbound topics
// through what the ingestor does before storing: size check, framing,
// decoding, validation against the limits, authorisation. Every record ends
// accepted with rows to add, or refused with a reason and a message, and
// its dead letter fits the dead-letter bound.
func FuzzRecord(f *testing.F) {
	codecs, err := events.NewCodecs()
	if err != nil {
		f.Fatal(err)
	}
	cfg := Defaults()
	i := &Ingestor{cfg: cfg, codecs: codecs, owners: NewOwners(), log: zerolog.Nop(), health: newHealth(time.Minute)}
	i.owners.Load(nil)
	topics := []string{"mesh.sales.metadata", "mesh.sales.lineage", "mesh.platform.usage", "mesh.sales.quality", "mesh.finance.usage", "mesh.x.other"}
	now := time.Now().UTC().Truncate(time.Millisecond)
	seeds := []events.Event{
		&events.UsageEvent{Envelope: events.Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: now, Emitter: "platform"},
			DatasetURN: "urn:mesh:dataset:wh:a", Consumer: events.Consumer{User: "u"}, AccessKind: "query"},
		&events.QualityResult{Envelope: events.Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: now, Emitter: "sales"},
			DatasetURN: "urn:mesh:dataset:wh:a", CheckName: "c", CheckType: "validity", Status: "PASS", Severity: "low"},
		&events.LineageRun{Envelope: events.Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: now, Emitter: "sales"},
			JobURN: "urn:mesh:job:sales:j", RunID: "r", State: "START", Inputs: []string{"urn:mesh:dataset:wh:a"}, Outputs: []string{"urn:mesh:dataset:wh:b"}},
		&events.ProductMetadata{Envelope: events.Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: now, Emitter: "sales"},
			ProductURN: "urn:mesh:product:sales:p", Domain: "sales", Name: "p", Lifecycle: "active",
			Outputs: []events.OutputDataset{{DatasetURN: "urn:mesh:dataset:wh:b", Fields: []events.DatasetField{{Name: "a", Type: "int"}}}}},
	}
	for k, ev := range seeds {
		b, err := codecs.Encode(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(k), b)
	}
	f.Add(uint8(0), []byte("garbage"))
	f.Fuzz(func(t *testing.T, topic uint8, value []byte) {
		r := &kgo.Record{Topic: topics[int(topic)%len(topics)], Value: value}
		d := i.decode(context.Background(), r, now)
		if d.retry {
			t.Fatal("a record without a registry asked for a retry")
		}
		if d.ref == nil {
			if d.ev == nil {
				t.Fatal("neither an event nor a refusal")
			}
			d.owner, d.ref = authorise(d.emitter, d.ev, i.owners)
		}
		if d.ref != nil {
			if d.ref.reason == "" || d.ref.msg == "" {
				t.Fatalf("refusal without reason or message: %+v", d.ref)
			}
			if dl := deadLetter(r, d.ref, cfg.DeadLetterMaxBytes); recordBytes(dl) > cfg.DeadLetterMaxBytes {
				t.Fatalf("dead letter of %d bytes", recordBytes(dl))
			}
		}
	})
}
