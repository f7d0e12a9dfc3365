// Package emit is meshpulse emit: NDJSON events of one family on stdin,
// validated and published, so a pipeline in any language can publish from
// the shell. Field names are the Avro schema's (snake_case); event_id,
// event_time (RFC 3339) and emitter may be left out and are filled in.
package emit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Result counts what happened to the input.
type Result struct {
	Published int
	Rejected  int
}

// Run reads NDJSON from in and publishes each line through p. A bad line is
// reported on errs with its line number and skipped; with strict, the first
// bad line stops the run before anything after it is published.
func Run(ctx context.Context, in io.Reader, errs io.Writer, p *events.Producer, family events.Family, strict bool) (Result, error) {
	var (
		res     Result
		failed  atomic.Int64
		mu      sync.Mutex
		hinted  bool
		scanner = bufio.NewScanner(in)
	)
	scanner.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for line := 1; scanner.Scan(); line++ {
		text := bytes.TrimSpace(scanner.Bytes())
		if len(text) == 0 {
			continue
		}
		ev, err := parse(text, family)
		if err == nil {
			n := line
			err = p.Produce(ctx, ev, func(err error) {
				if err != nil {
					failed.Add(1)
					mu.Lock()
					fmt.Fprintf(errs, "line %d: publish: %v\n", n, err)
					if errors.Is(err, kerr.UnknownTopicOrPartition) && !hinted {
						hinted = true
						topic := events.Topic(p.Emitter(), family)
						fmt.Fprintf(errs, "topic %s does not exist (meshpulse never lets Kafka create topics on use): create it with\n"+
							"  meshpulse migrate -kafka … -clickhouse … -domains %s\nor, against meshpulse dev, restart it with -domains %s\n", topic, p.Emitter(), p.Emitter())
					}
					mu.Unlock()
				}
			})
		}
		if err != nil {
			res.Rejected++
			mu.Lock()
			fmt.Fprintf(errs, "line %d: %v\n", line, err)
			mu.Unlock()
			if strict {
				break
			}
			continue
		}
		res.Published++
	}
	if err := scanner.Err(); err != nil {
		return res, fmt.Errorf("read input: %w", err)
	}
	if err := p.Flush(ctx); err != nil {
		return res, err
	}
	n := int(failed.Load())
	res.Published -= n
	res.Rejected += n
	return res, nil
}

func parse(line []byte, family events.Family) (events.Event, error) {
	ev := events.NewEvent(family)
	if ev == nil {
		return nil, fmt.Errorf("unknown family %q", family)
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ev); err != nil {
		return nil, fmt.Errorf("not a %s event: %w", family, err)
	}
	return ev, nil
}
