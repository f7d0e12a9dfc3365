package emit

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

// input has event times an hour ago, inside the accepted window.
var input = strings.ReplaceAll(`{"dataset_urn":"urn:mesh:dataset:wh:sales.orders","consumer":{"user":"ana","domain":"marketing"},"rows_read":10}
not json
{"dataset_urn":"orders","consumer":{"user":"bob"}}

{"dataset_urn":"urn:mesh:dataset:wh:sales.orders","consumer":{"user":"cy"},"event_time":"2026-11-01T10:00:00Z","colour":"red"}
{"dataset_urn":"urn:mesh:dataset:wh:sales.orders","consumer":{"user":"dee"},"access_kind":"export","event_time":"2026-11-01T10:00:00Z"}
`, "2026-11-01T10:00:00Z", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))

func TestEmit(t *testing.T) {
	tests := []struct {
		name          string
		strict        bool
		published     int
		rejected      int
		errorsMention []string
	}{
		{"lenient", false, 2, 3, []string{"line 2:", "line 3: invalid usage event: dataset_urn", "line 5:", `unknown field "colour"`}},
		{"strict", true, 1, 1, []string{"line 2:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seeds := testenv.Kafka(t)
			cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			if err := kafka.EnsureTopics(context.Background(), cl, 1, 1, kafka.CoreTopics()...); err != nil {
				t.Fatal(err)
			}
			codecs, _ := events.NewCodecs()
			p, _ := events.NewProducer(cl, codecs, "platform")
			var errs bytes.Buffer
			res, err := Run(context.Background(), strings.NewReader(input), &errs, p, events.FamilyUsage, tt.strict)
			if err != nil {
				t.Fatal(err)
			}
			if res.Published != tt.published || res.Rejected != tt.rejected {
				t.Fatalf("result %+v, want %d published, %d rejected; errors:\n%s", res, tt.published, tt.rejected, errs.String())
			}
			for _, m := range tt.errorsMention {
				if !strings.Contains(errs.String(), m) {
					t.Errorf("errors do not mention %q:\n%s", m, errs.String())
				}
			}
			// What was published is what a consumer reads back.
			rd, _ := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("mesh.platform.usage"),
				kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
			defer rd.Close()
			var got []string
			for len(got) < tt.published {
				for _, r := range rd.PollFetches(context.Background()).Records() {
					ev, err := codecs.Decode(context.Background(), r.Value)
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ev.(*events.UsageEvent).Consumer.User)
					if string(r.Key) != ev.Key() {
						t.Errorf("key %q, want %q", r.Key, ev.Key())
					}
				}
			}
			if got[0] != "ana" {
				t.Errorf("first published = %v", got)
			}
		})
	}
}

// TestEmitToMissingTopic: publishing for a domain whose topics were never
// created fails (it does not hang) and says how to create them.
func TestEmitToMissingTopic(t *testing.T) {
	seeds := testenv.Kafka(t)
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codecs, _ := events.NewCodecs()
	p, _ := events.NewProducer(cl, codecs, "newdomain")
	var errs bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	line := `{"dataset_urn":"urn:mesh:dataset:wh:x","consumer":{"user":"ana"}}` + "\n"
	res, err := Run(ctx, strings.NewReader(line), &errs, p, events.FamilyUsage, false)
	if err != nil {
		t.Fatal(err)
	}
	if res.Rejected != 1 || !strings.Contains(errs.String(), "-domains newdomain") {
		t.Fatalf("result %+v, errors:\n%s", res, errs.String())
	}
	t.Log(errs.String())
}
