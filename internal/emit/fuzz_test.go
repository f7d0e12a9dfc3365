package emit

import (
	"errors"
	"testing"
	"time"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// FuzzNDJSONLine feeds arbitrary lines to meshpulse emit's parser and
// validation, for every family: nothing may panic, and a refused line gets
// a message.
func FuzzNDJSONLine(f *testing.F) {
	f.Add(uint8(2), []byte(`{"dataset_urn":"urn:mesh:dataset:wh:sales.orders","consumer":{"user":"ana"}}`))
	f.Add(uint8(0), []byte(`{"product_urn":"urn:mesh:product:sales:o","domain":"sales","name":"o","outputs":[{"dataset_urn":"urn:mesh:dataset:wh:x","fields":[{"name":"a","type":"b"}]}]}`))
	f.Add(uint8(1), []byte(`{"job_urn":"urn:mesh:job:sales:j","run_id":"r","state":"COMPLETE","inputs":["urn:mesh:dataset:wh:a"],"outputs":["urn:mesh:dataset:wh:b"]}`))
	f.Add(uint8(3), []byte(`{"dataset_urn":"urn:mesh:dataset:wh:a","check_name":"c","check_type":"validity","status":"FAIL","event_time":"2026-01-01T00:00:00Z"}`))
	f.Add(uint8(2), []byte(`not json`))
	now := time.Now()
	f.Fuzz(func(t *testing.T, family uint8, line []byte) {
		fam := events.InboundFamilies[int(family)%len(events.InboundFamilies)]
		ev, err := parse(line, fam)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal without a message")
			}
			return
		}
		h := ev.Header()
		if h.EventID == "" {
			h.EventID = "6f1c2f0e-9a57-4c57-9b7e-1d2f3a4b5c6d"
		}
		if h.EventTime.IsZero() {
			h.EventTime = now
		}
		if err := ev.ValidateWith(events.DefaultLimits(), now); err != nil {
			var ve *events.ValidationError
			if !errors.As(err, &ve) || ve.Reason() == "" {
				t.Fatalf("invalid line without a reason: %v", err)
			}
		}
	})
}
