// Package scorer is the continuous scorer: each tick it takes the products
// the change feed names (mesh.changes), rescores them and what depends on
// them (plus a periodic full pass, because windows move), writes the scores
// that changed (current scores, history) and publishes a ScoreChanged event
// when a band changes or a score moves more than the policy threshold.
// Replicas split the products by the partitions of mesh.scores, assigned by
// Kafka group membership: each computes its own share and reads the others'
// from the current scores. The score model itself is package model.
// It never writes the inbound tables.
package scorer

import (
	"errors"
	"flag"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Config of the scorer loop.
type Config struct {
	Group      string        // consumer group over mesh.scores that shards the products
	Tick       time.Duration // how often changed products are rescored
	FullPass   time.Duration // how often every product is rescored
	PolicyFile string        // YAML policy; empty uses the documented defaults
	Replica    string        // name of this replica in logs; defaults to the host name
	// SessionTimeout: how soon a crashed replica's share moves to the others.
	SessionTimeout time.Duration
	// HistoryRetention: months of score history older than this are dropped.
	HistoryRetention time.Duration
	// ReloadEvery: a full pass reloads every declaration and the lineage
	// graph this often (the change feed names the declarations that change;
	// this catches up with anything it missed).
	ReloadEvery time.Duration

	// OnPass, when set, is called after every pass that scored something
	// (benchmarks and tests read it; not a flag).
	OnPass func(PassStats)
	// KafkaHooks go on the group member's client (client metrics); not a flag.
	KafkaHooks []kgo.Hook
}

// PassStats describes one scoring pass.
type PassStats struct {
	Full     bool
	Affected int // products whose signals changed (all on a full pass)
	Scored   int // products written to history (this replica's share of the affected and their downstream)
	Alerts   int
	Took     time.Duration
	// Phases is how long each step took, in order (benchmarks print it).
	Phases []Phase
}

// Phase is one timed step of a pass.
type Phase struct {
	Name string
	Took time.Duration
}

// RegisterFlags adds the scorer flags.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Group, "group", "meshpulse-scorer", "consumer group sharding products between replicas (env MESHPULSE_GROUP)")
	fs.DurationVar(&c.Tick, "tick", 2*time.Second, "rescore changed products this often (env MESHPULSE_TICK)")
	fs.DurationVar(&c.FullPass, "full-pass", time.Minute, "rescore every product this often (env MESHPULSE_FULL_PASS)")
	fs.StringVar(&c.PolicyFile, "policy", "", "policy YAML file; empty uses the defaults in docs/scoring.md (env MESHPULSE_POLICY)")
	fs.StringVar(&c.Replica, "replica", "", "replica name for logs; defaults to the host name (env MESHPULSE_REPLICA)")
	fs.DurationVar(&c.SessionTimeout, "session-timeout", 10*time.Second, "group session timeout: how soon a crashed replica's products move (env MESHPULSE_SESSION_TIMEOUT)")
	fs.DurationVar(&c.ReloadEvery, "reload-every", 10*time.Minute, "reload every declaration and the lineage graph this often, besides the changes the feed names (env MESHPULSE_RELOAD_EVERY)")
	fs.DurationVar(&c.HistoryRetention, "history-retention", 400*24*time.Hour, "drop months of score history older than this; 0 keeps everything (env MESHPULSE_HISTORY_RETENTION)")
}

// Defaults returns the flag defaults.
func Defaults() Config {
	var c Config
	c.RegisterFlags(flag.NewFlagSet("", flag.ContinueOnError))
	return c
}

// Errors returned by Validate.
var (
	ErrNoGroup   = errors.New("scorer group is required")
	ErrIntervals = errors.New("tick and full pass must be positive, the full pass at least one tick, the reload positive, the session timeout at least 6s and the history retention not negative")
)

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Group == "" {
		errs = append(errs, ErrNoGroup)
	}
	if c.Tick <= 0 || c.FullPass < c.Tick || c.ReloadEvery <= 0 || c.SessionTimeout < 6*time.Second || c.HistoryRetention < 0 {
		errs = append(errs, ErrIntervals)
	}
	return errors.Join(errs...)
}
