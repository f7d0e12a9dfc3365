package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// TopicChanges is meshpulse's internal change feed: the ingestor names what
// it stored, the scorer what it rescored, so the scorer finds changes
// without scanning ClickHouse. Records are keyed by URN; the value is one
// byte, a set of the flags below. Nothing outside meshpulse should rely on it.
const TopicChanges = "mesh.changes"

// What a change record says, as flags of its one byte.
const (
	ChangeQuality     byte = 1 << iota // a dataset got new quality results
	ChangeUsage                        // a dataset got new reads
	ChangeRuns                         // a dataset got new run states
	ChangeLineage                      // a dataset got new lineage edges into it
	ChangeDeclaration                  // a product's declaration changed
	ChangeScore                        // a product's own score changed
)

// ChangeSignals is every signal family of a dataset.
const ChangeSignals = ChangeQuality | ChangeUsage | ChangeRuns

// ChangeRecord is the record that announces changes of a URN.
func ChangeRecord(urn string, what byte) *kgo.Record {
	return &kgo.Record{Topic: TopicChanges, Key: []byte(urn), Value: []byte{what}}
}

// ChangeKind reads what a change record says (0 for a malformed one).
func ChangeKind(value []byte) byte {
	if len(value) != 1 {
		return 0
	}
	return value[0]
}
