// Package watch is meshpulse watch: it follows mesh.scores and prints score
// changes for people (or as JSON lines for scripts), optionally filtered by
// domain or product. It reads without a consumer group and commits nothing.
package watch

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Config of a watch.
type Config struct {
	FromBeginning bool   // replay every alert on the topic, not only new ones
	Domain        string // only this domain's products
	Product       string // only this product
	JSON          bool   // one JSON object per line
	Limit         int    // stop after this many printed changes; 0 follows forever
}

// Run prints score changes until ctx ends or Limit is reached.
func Run(ctx context.Context, c Config, kafkaOpts []kgo.Opt, codecs *events.Codecs, out io.Writer) error {
	start := kgo.NewOffset().AtEnd()
	if c.FromBeginning {
		start = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(append(kafkaOpts, kgo.ConsumeTopics(events.TopicScores), kgo.ConsumeResetOffset(start))...)
	if err != nil {
		return err
	}
	defer cl.Close()
	printed := 0
	for {
		fetches := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err := fetches.Err0(); err != nil && !fetches.IsClientClosed() {
			return fmt.Errorf("read %s: %w", events.TopicScores, err)
		}
		for _, r := range fetches.Records() {
			ev, err := codecs.Decode(ctx, r.Value)
			if err != nil {
				fmt.Fprintf(out, "skipping an unreadable record at offset %d: %v\n", r.Offset, err)
				continue
			}
			sc, ok := ev.(*events.ScoreChanged)
			if !ok || !c.matches(sc) {
				continue
			}
			if c.JSON {
				b, _ := json.Marshal(sc)
				fmt.Fprintln(out, string(b))
			} else {
				fmt.Fprintln(out, Format(sc))
			}
			printed++
			if c.Limit > 0 && printed >= c.Limit {
				return nil
			}
		}
	}
}

func (c Config) matches(sc *events.ScoreChanged) bool {
	return (c.Domain == "" || sc.Domain == c.Domain) && (c.Product == "" || sc.ProductURN == c.Product)
}

// Format renders one change for a person.
func Format(sc *events.ScoreChanged) string {
	name := strings.TrimPrefix(sc.ProductURN, "urn:mesh:product:")
	val := func(v *float64) string {
		if v == nil {
			return "?"
		}
		return fmt.Sprintf("%.0f", *v)
	}
	move := func(old *float64, oldBand string, now *float64, band string) string {
		if oldBand == "" {
			return fmt.Sprintf("%s %s", val(now), band)
		}
		arrow := "→"
		if band != oldBand {
			return fmt.Sprintf("%s %s %s %s %s", val(old), oldBand, arrow, val(now), strings.ToUpper(band))
		}
		return fmt.Sprintf("%s %s %s %s", val(old), arrow, val(now), band)
	}
	line := fmt.Sprintf("%s  %-34s health %-28s trust %-28s %s", sc.EventTime.Local().Format("15:04:05"), name,
		move(sc.OldHealth, sc.OldHealthBand, sc.NewHealth, sc.NewHealthBand),
		move(sc.OldTrust, sc.OldTrustBand, sc.NewTrust, sc.NewTrustBand), sc.Cause)
	return strings.TrimRight(line, " ")
}
