package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// liveEvent is what the open pages receive: a product's score changed
// ("score", from the current scores), or an alert was published on
// mesh.scores ("alert", the ScoreChanged event itself).
type liveEvent struct {
	Kind  string               `json:"kind"`
	Score *Score               `json:"score,omitempty"`
	Alert *events.ScoreChanged `json:"alert,omitempty"`
}

// hub fans live events out to the open pages. A page that cannot keep up
// loses events rather than slowing the others (it reloads what it shows
// on the next event it gets).
type hub struct {
	mu     sync.Mutex
	subs   map[chan liveEvent]struct{}
	closed bool
}

func newHub() *hub { return &hub{subs: map[chan liveEvent]struct{}{}} }

func (h *hub) subscribe() (chan liveEvent, func()) {
	ch := make(chan liveEvent, 256)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.subs[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.subs[ch]; ok {
			delete(h.subs, ch)
			close(ch)
		}
	}
}

func (h *hub) publish(ev liveEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- ev:
		default:
		}
	}
}

func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.subs {
		close(ch)
	}
	h.subs = map[chan liveEvent]struct{}{}
}

// apiLive streams live events as server-sent events.
func (s *Server) apiLive(w http.ResponseWriter, r *http.Request) {
	flusher, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	ch, cancel := s.hub.subscribe()
	defer cancel()
	fmt.Fprint(w, "retry: 2000\n: connected\n\n")
	flusher.Flush()
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepalive.C:
			fmt.Fprint(w, ": keepalive\n\n")
			flusher.Flush()
		case ev, ok := <-ch:
			if !ok {
				return
			}
			b, _ := json.Marshal(ev)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev.Kind, b)
			flusher.Flush()
		}
	}
}

// followAlerts reads mesh.scores from its end and passes each alert on.
func (s *Server) followAlerts(ctx context.Context) error {
	opts := append(append([]kgo.Opt(nil), s.kopts...),
		kgo.ConsumeTopics(events.TopicScores),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtEnd()),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fmt.Errorf("catalog kafka client: %w", err)
	}
	defer cl.Close()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		if fetches.IsClientClosed() || ctx.Err() != nil {
			return nil
		}
		fetches.EachError(func(t string, p int32, err error) {
			s.log.Warn().Err(err).Str("topic", t).Int32("partition", p).Msg("catalog: reading mesh.scores")
		})
		fetches.EachRecord(func(r *kgo.Record) {
			ev, err := s.codecs.Decode(ctx, r.Value)
			if err != nil {
				return
			}
			if sc, ok := ev.(*events.ScoreChanged); ok {
				s.hub.publish(liveEvent{Kind: "alert", Alert: sc})
			}
		})
	}
	return nil
}
