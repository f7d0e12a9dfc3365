package ingest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// health tracks whether the replica makes progress. It is unhealthy when
// its partitions have lag (from the group's committed offsets, not from what
// it polled) and it has committed nothing for StallTimeout: a poison record
// that cannot be dead-lettered, a ClickHouse that never comes back, a member
// the group forgot. Lag 0 is progress: there is nothing to do.
type health struct {
	stall time.Duration

	mu           sync.Mutex
	lastProgress time.Time
	lag          int64 // over the partitions assigned to this replica; -1 unknown
	lastErr      string
}

func newHealth(stall time.Duration) *health {
	return &health{stall: stall, lastProgress: time.Now(), lag: -1}
}

func (h *health) progress() {
	h.mu.Lock()
	h.lastProgress = time.Now()
	h.lastErr = ""
	h.mu.Unlock()
}

func (h *health) failing(stage string, err error) {
	h.mu.Lock()
	h.lastErr = stage + ": " + err.Error()
	h.mu.Unlock()
}

func (h *health) setLag(lag int64) {
	h.mu.Lock()
	h.lag = lag
	if lag == 0 {
		h.lastProgress = time.Now()
	}
	h.mu.Unlock()
}

// check returns nil when healthy, or why not.
func (h *health) check() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	idle := time.Since(h.lastProgress)
	if h.lag > 0 && idle > h.stall {
		msg := fmt.Sprintf("no progress for %s while %d records wait", idle.Round(time.Second), h.lag)
		if h.lastErr != "" {
			msg += "; last error: " + h.lastErr
		}
		return errors.New(msg)
	}
	return nil
}

// Healthy reports nil while the replica makes progress (for /healthz).
func (i *Ingestor) Healthy() error { return i.health.check() }

// watchLag measures the lag of this replica's partitions from the group's
// committed offsets and the partitions' end offsets, every interval.
func (i *Ingestor) watchLag(ctx context.Context, every time.Duration) {
	adm := kadm.NewClient(i.client)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := i.measureLag(ctx, adm); err != nil && ctx.Err() == nil {
			i.log.Debug().Err(err).Msg("measure lag")
		}
	}
}

func (i *Ingestor) measureLag(ctx context.Context, adm *kadm.Client) error {
	assigned := i.assignedPartitions()
	if len(assigned) == 0 {
		i.health.setLag(0)
		return nil
	}
	topics := make([]string, 0, len(assigned))
	for t := range assigned {
		topics = append(topics, t)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ends, err := adm.ListEndOffsets(ctx, topics...)
	if err != nil {
		return fmt.Errorf("list end offsets: %w", err)
	}
	committed, err := adm.FetchOffsets(ctx, i.cfg.Group)
	if err != nil {
		return fmt.Errorf("fetch committed offsets: %w", err)
	}
	var total int64
	for t, ps := range assigned {
		for _, p := range ps {
			end, ok := ends.Lookup(t, p)
			if !ok || end.Err != nil {
				continue
			}
			var at int64
			if c, ok := committed.Lookup(t, p); ok && c.Err == nil && c.At >= 0 {
				at = c.At
			}
			lag := max(end.Offset-at, 0)
			i.m.lag.WithLabelValues(t, partitionLabel(p)).Set(float64(lag))
			total += lag
		}
	}
	i.health.setLag(total)
	return nil
}
