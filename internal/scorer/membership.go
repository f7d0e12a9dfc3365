package scorer

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/go-faster/city"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Replicas split the products by the partitions of mesh.scores, assigned by
// Kafka group membership: a product belongs to partition
// cityHash64(product URN) mod partitions (ClickHouse computes the same
// function, so a share can also be selected in SQL), and a replica scores,
// writes and alerts only for the products of the partitions it holds.
//
// A partition is also the alert state of its products: the last ScoreChanged
// of each, read from the compacted topic. A replica that gets a partition
// reads it up to the high watermark measured at assignment (retried until
// known, never assumed) before it scores those products, so the previous
// band and alert always come from what was published, never from anything a
// replica computed while it did not own the product. A revoke waits for the
// tick in flight, so the old owner cannot publish after the new owner has
// read the partition.

// Partition is the shard of a product: its partition of mesh.scores.
func Partition(product string, partitions int32) int32 {
	return int32(city.CH64([]byte(product)) % uint64(partitions))
}

// shard is one partition of mesh.scores owned by this replica.
type shard struct {
	end     int64 // high watermark at assignment; -1 until known
	ready   bool
	alerted map[string]*lastAlert
}

func (s *Scorer) onAssigned(ctx context.Context, cl *kgo.Client, assigned map[string][]int32) {
	parts := assigned[events.TopicScores]
	s.mu.Lock()
	for _, p := range parts {
		s.shards[p] = &shard{end: -1, alerted: map[string]*lastAlert{}}
		delete(s.positions, p) // read again from the start; an earlier ownership's position says nothing
	}
	s.assignGen++
	s.mu.Unlock()
	s.log.Info().Ints32("partitions", parts).Msg("shards assigned; reading their last alerts")
	go s.measureEnds(ctx, cl, parts)
}

// measureEnds learns the high watermark of newly assigned partitions,
// retrying until it knows: a shard is ready only once its alerts are read.
func (s *Scorer) measureEnds(ctx context.Context, cl *kgo.Client, parts []int32) {
	adm := kadm.NewClient(cl)
	for backoff := 200 * time.Millisecond; ctx.Err() == nil; backoff = min(2*backoff, 5*time.Second) {
		ends, err := adm.ListEndOffsets(ctx, events.TopicScores)
		var starts kadm.ListedOffsets
		if err == nil {
			// A partition compacted or deleted down to nothing has no record
			// to read up to: its start is its end.
			starts, err = adm.ListStartOffsets(ctx, events.TopicScores)
		}
		pending := 0
		s.mu.Lock()
		for _, p := range parts {
			sh := s.shards[p]
			if sh == nil || sh.end >= 0 {
				continue
			}
			o, ok := ends.Lookup(events.TopicScores, p)
			if err != nil || !ok || o.Err != nil {
				pending++
				continue
			}
			sh.end = o.Offset
			if st, ok := starts.Lookup(events.TopicScores, p); ok && st.Err == nil && st.Offset >= sh.end {
				sh.ready = true
			}
			// The partition may have been read to its end before its end
			// was known; no record may come to wake the reader again.
			if pos, ok := s.positions[p]; ok && pos >= sh.end {
				sh.ready = true
			}
		}
		s.mu.Unlock()
		if pending == 0 {
			return
		}
		if err == nil {
			err = fmt.Errorf("%d partitions without an end offset", pending)
		}
		s.log.Warn().Err(err).Dur("retry_in", backoff).Msg("end offsets of mesh.scores unknown; shards stay unready")
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
	}
}

// onDropped runs on revoke and on loss: it waits for the tick in flight,
// then forgets the shards.
func (s *Scorer) onDropped(_ context.Context, _ *kgo.Client, dropped map[string][]int32) {
	s.tickMu.Lock()
	defer s.tickMu.Unlock()
	s.mu.Lock()
	for _, p := range dropped[events.TopicScores] {
		delete(s.shards, p)
	}
	s.assignGen++
	s.mu.Unlock()
	s.log.Info().Ints32("partitions", dropped[events.TopicScores]).Msg("shards dropped")
}

// consume keeps group membership and reads the last alerts of newly
// assigned shards; it warns about alerts another scorer group publishes.
func (s *Scorer) consume(ctx context.Context) {
	warned := map[string]bool{}
	for ctx.Err() == nil {
		fetches := s.client.PollFetches(ctx)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachRecord(func(r *kgo.Record) {
			if g := headerValue(r, HeaderGroup); g != "" && g != s.cfg.Group && !warned[g] {
				warned[g] = true
				s.m.foreign.Inc()
				s.log.Error().Str("other_group", g).Str("group", s.cfg.Group).
					Msg("another scorer group publishes to mesh.scores: every alert is being sent twice; run one scorer group per mesh")
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			s.positions[r.Partition] = r.Offset + 1
			sh := s.shards[r.Partition]
			if sh == nil || sh.ready {
				return // our own alerts, already in the state
			}
			if ev, err := s.codecs.Decode(ctx, r.Value); err == nil {
				if sc, ok := ev.(*events.ScoreChanged); ok {
					sh.alerted[sc.ProductURN] = lastOf(sc)
				}
			}
			if sh.end >= 0 && r.Offset+1 >= sh.end {
				sh.ready = true
			}
		})
		// A shard whose end was learnt while its records were read (and the
		// one measureEnds finds read already).
		s.mu.Lock()
		for p, sh := range s.shards {
			if !sh.ready && sh.end >= 0 {
				if o, ok := s.positions[p]; ok && o >= sh.end {
					sh.ready = true
				}
			}
		}
		s.mu.Unlock()
	}
}

// share is what this replica scores now: the ready shards, and a token that
// changes with every assignment change.
type share struct {
	parts  map[int32]bool
	all    bool // every partition: no filter needed
	gen    uint64
	shards map[int32]*shard
}

func (s *Scorer) currentShare() share {
	s.mu.Lock()
	defer s.mu.Unlock()
	sh := share{parts: map[int32]bool{}, gen: s.assignGen, shards: map[int32]*shard{}}
	for p, st := range s.shards {
		if st.ready {
			sh.parts[p] = true
			sh.shards[p] = st
		}
	}
	sh.all = int32(len(sh.parts)) == s.parts
	return sh
}

func (sh share) owns(product string, partitions int32) bool {
	return sh.parts[Partition(product, partitions)]
}

// Owned lists the partitions this replica owns and has finished loading.
func (s *Scorer) Owned() []int32 {
	sh := s.currentShare()
	out := make([]int32, 0, len(sh.parts))
	for p := range sh.parts {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// checkTopic refuses to start on a mesh.scores that is not compacted (the
// alert state would expire) and reports its partition count (the shards).
func checkTopic(ctx context.Context, cl *kgo.Client) (int32, error) {
	adm := kadm.NewClient(cl)
	topics, err := adm.ListTopics(ctx, events.TopicScores)
	if err != nil {
		return 0, fmt.Errorf("describe %s: %w", events.TopicScores, err)
	}
	td, ok := topics[events.TopicScores]
	if !ok || td.Err != nil || len(td.Partitions) == 0 {
		return 0, fmt.Errorf("topic %s does not exist or cannot be described (%v); create it with meshpulse migrate", events.TopicScores, td.Err)
	}
	configs, err := adm.DescribeTopicConfigs(ctx, events.TopicScores)
	if err != nil {
		return 0, fmt.Errorf("describe the configuration of %s (the scorer's principal needs DescribeConfigs on it): %w", events.TopicScores, err)
	}
	rc, err := configs.On(events.TopicScores, nil)
	if err != nil || rc.Err != nil {
		return 0, fmt.Errorf("describe the configuration of %s (the scorer's principal needs DescribeConfigs on it): %v %v", events.TopicScores, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || !strings.Contains(*c.Value, "compact")) {
			v := "<none>"
			if c.Value != nil {
				v = *c.Value
			}
			return 0, fmt.Errorf("%s has cleanup.policy=%s: it must be compacted, since the scorer rebuilds its alert state from it (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)", events.TopicScores, v, events.TopicScores)
		}
	}
	return int32(len(td.Partitions)), nil
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
