package openlineage

import "testing"

// BenchmarkParse is one event of the HTTP benchmark's kind: validation
// against the schemas, then the mapping.
func BenchmarkParse(b *testing.B) {
	raw := []byte(fullRun)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		ev, err := testSpec.Parse(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := testSpec.Map(ev, raw, "platform", nil); err != nil {
			b.Fatal(err)
		}
	}
}
