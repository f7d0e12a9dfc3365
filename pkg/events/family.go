package events

import (
	"fmt"
	"strings"
)

// Family is the kind of an event; it names the topic suffix and the schema
// directory.
type Family string

// The event families. Scores is produced by the scorer only.
const (
	FamilyMetadata Family = "metadata"
	FamilyLineage  Family = "lineage"
	FamilyUsage    Family = "usage"
	FamilyQuality  Family = "quality"
	FamilyScores   Family = "scores"
	// FamilyOpenLineage is OpenLineage's JSON (RunEvent, DatasetEvent,
	// JobEvent) as its Kafka transport writes it, not an Avro family: the
	// ingestor maps it onto the others.
	FamilyOpenLineage Family = "openlineage"
)

// InboundFamilies are the Avro families domain pipelines publish (and
// mesh.<emitter>.openlineage besides).
var InboundFamilies = []Family{FamilyMetadata, FamilyLineage, FamilyUsage, FamilyQuality}

// Well-known topics.
const (
	TopicScores     = "mesh.scores"
	TopicDeadLetter = "mesh.deadletter"
	// PlatformEmitter is the emitter name of shared tooling (query-log
	// collectors, quality runners) that speaks for no single domain.
	PlatformEmitter = "platform"
)

// InboundTopicPattern matches every inbound topic; the ingestor subscribes to it.
const InboundTopicPattern = `^mesh\.[a-z0-9-]+\.(metadata|lineage|usage|quality|openlineage)$`

// Topic is the topic an emitter publishes a family on.
func Topic(emitter string, f Family) string {
	if f == FamilyScores {
		return TopicScores
	}
	return "mesh." + emitter + "." + string(f)
}

// ParseTopic splits an inbound topic into emitter and family.
func ParseTopic(topic string) (emitter string, f Family, err error) {
	// By hand rather than with InboundTopicPattern: the ingestor asks for every
	// record, and the regular expression cost a tenth of its CPU.
	rest, ok := strings.CutPrefix(topic, "mesh.")
	dot := strings.LastIndexByte(rest, '.')
	if ok && dot > 0 {
		emitter, f = rest[:dot], Family(rest[dot+1:])
		switch f {
		case FamilyMetadata, FamilyLineage, FamilyUsage, FamilyQuality, FamilyOpenLineage:
			if topicWord(emitter) {
				return emitter, f, nil
			}
		}
	}
	return "", "", fmt.Errorf("topic %q is not an inbound topic mesh.<emitter>.<family>", topic)
}

// topicWord reports whether s is non-empty and of [a-z0-9-] only.
func topicWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return s != ""
}

// ParseFamily checks a family name given by a user.
func ParseFamily(s string) (Family, error) {
	switch f := Family(s); f {
	case FamilyMetadata, FamilyLineage, FamilyUsage, FamilyQuality, FamilyScores:
		return f, nil
	}
	return "", fmt.Errorf("unknown family %q (want metadata, lineage, usage, quality or scores)", s)
}
