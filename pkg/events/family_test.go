package events

import (
	"regexp"
	"testing"
)

// ParseTopic is written by hand for speed: it must accept exactly what
// InboundTopicPattern (the ingestor's subscription) matches.
func TestParseTopicAgreesWithPattern(t *testing.T) {
	re := regexp.MustCompile(InboundTopicPattern)
	for _, topic := range []string{
		"mesh.sales.usage", "mesh.sales.openlineage", "mesh.a-b.lineage", "mesh.-x.quality", "mesh.9.metadata",
		"mesh.sales.scores", "mesh.scores", "mesh..usage", "mesh.Sales.usage", "mesh.sales.usage.x", "mesh.sa.les.usage",
		"xmesh.sales.usage", "mesh.sales.usagex", "mesh.sales_x.usage", "", "mesh.", "mesh.sales.",
	} {
		_, _, err := ParseTopic(topic)
		if (err == nil) != re.MatchString(topic) {
			t.Errorf("%q: ParseTopic error %v, pattern match %v", topic, err, re.MatchString(topic))
		}
	}
}
