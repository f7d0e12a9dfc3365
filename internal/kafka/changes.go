package kafka

import "github.com/twmb/franz-go/pkg/kgo"

// TopicChanges is meshpulse's internal change feed: the ingestor names what
// it stored, the scorer what it rescored, so the scorer finds changes
// without scanning ClickHouse. Records are keyed by URN; the value is one
// byte saying what changed. Nothing outside meshpulse should rely on it.
const TopicChanges = "mesh.changes"

// What a change record says.
const (
	ChangeSignals     byte = 'd' // a dataset got new checks, runs or reads
	ChangeDeclaration byte = 'p' // a product's declaration changed
	ChangeLineage     byte = 'l' // a dataset got new lineage edges (and run signals)
	ChangeScore       byte = 's' // a product's own score changed
)

// ChangeRecord is the record that announces a change of a URN.
func ChangeRecord(urn string, kind byte) *kgo.Record {
	return &kgo.Record{Topic: TopicChanges, Key: []byte(urn), Value: []byte{kind}}
}

// ChangeKind reads what a change record says (0 for a malformed one).
func ChangeKind(value []byte) byte {
	if len(value) != 1 {
		return 0
	}
	return value[0]
}
