package watch

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/kafka"
	"github.com/meshpulse/meshpulse/internal/testenv"
	"github.com/meshpulse/meshpulse/pkg/events"
)

func ptr(f float64) *float64 { return &f }

func TestFormat(t *testing.T) {
	tests := []struct {
		ev   events.ScoreChanged
		want []string
	}{
		{events.ScoreChanged{ProductURN: "urn:mesh:product:sales:orders", NewHealth: ptr(90), NewHealthBand: "healthy", NewTrust: ptr(88), NewTrustBand: "healthy", Cause: "first score"},
			[]string{"sales:orders", "health 90 healthy", "trust 88 healthy", "first score"}},
		{events.ScoreChanged{ProductURN: "urn:mesh:product:sales:orders", OldHealth: ptr(90), OldHealthBand: "healthy", NewHealth: ptr(35), NewHealthBand: "critical",
			OldTrust: ptr(88), OldTrustBand: "healthy", NewTrust: ptr(80), NewTrustBand: "healthy", Cause: "3 of 3 checks failed"},
			[]string{"health 90 healthy → 35 CRITICAL", "trust 88 → 80 healthy", "3 of 3 checks failed"}},
		{events.ScoreChanged{ProductURN: "urn:mesh:product:sales:orders", OldHealth: ptr(90), OldHealthBand: "healthy", NewHealthBand: "unknown",
			OldTrust: ptr(88), OldTrustBand: "healthy", NewTrustBand: "unknown", Cause: "no signals any more"},
			[]string{"health 90 healthy → ? UNKNOWN", "no signals any more"}},
	}
	for _, tt := range tests {
		got := Format(&tt.ev)
		for _, w := range tt.want {
			if !strings.Contains(got, w) {
				t.Errorf("Format = %q, lacks %q", got, w)
			}
		}
	}
}

func TestRunFilters(t *testing.T) {
	seeds := testenv.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := kafka.EnsureTopics(context.Background(), cl, 2, 1, events.TopicScores); err != nil {
		t.Fatal(err)
	}
	codecs, _ := events.NewCodecs()
	for _, p := range []string{"urn:mesh:product:sales:a", "urn:mesh:product:finance:b", "urn:mesh:product:sales:c"} {
		domain := strings.Split(p, ":")[3]
		ev := &events.ScoreChanged{Envelope: events.Envelope{EventID: "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d", EventTime: time.Now(), Emitter: "scorer"},
			ProductURN: p, Domain: domain, NewHealth: ptr(50), NewTrust: ptr(50), NewHealthBand: "degraded", NewTrustBand: "degraded", Cause: "first score"}
		b, _ := codecs.Encode(ev)
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: events.TopicScores, Key: []byte(p), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		cfg   Config
		lines int
		has   string
	}{
		{Config{FromBeginning: true, Domain: "sales", Limit: 2}, 2, "sales:"},
		{Config{FromBeginning: true, Product: "urn:mesh:product:finance:b", Limit: 1, JSON: true}, 1, `"product_urn":"urn:mesh:product:finance:b"`},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := Run(ctx, tt.cfg, []kgo.Opt{kgo.SeedBrokers(seeds...)}, codecs, &out)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != tt.lines || !strings.Contains(out.String(), tt.has) || strings.Contains(out.String(), "finance") != strings.Contains(tt.has, "finance") {
			t.Errorf("%+v printed:\n%s", tt.cfg, out.String())
		}
	}
}
