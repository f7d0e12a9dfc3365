package openlineage

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// FuzzEvent: whatever a producer sends, Parse either refuses it with an
// error or returns an event that Map turns into valid URNs, or refuses;
// nothing panics.
func FuzzEvent(f *testing.F) {
	f.Add([]byte(fullRun))
	f.Add([]byte(`{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "dataset": {"namespace": "s3://a", "name": "b"}}`))
	f.Add([]byte(`{"eventTime": "2026-11-29T10:00:00Z", ` + producer + `, "job": {"namespace": "n", "name": "j"}, "inputs": [{"namespace": "file", "name": "/x"}]}`))
	f.Add([]byte(`{"eventTime": null, "run": {}, "job": []}`))
	if raw, err := os.ReadFile(filepath.Join("testdata", "example_full_event.json")); err == nil {
		f.Add(raw)
	}
	rules, _ := ParseNamespaceRules("dbt*=sales")
	f.Fuzz(func(t *testing.T, raw []byte) {
		// The fast path never accepts what the schemas refuse, and what the
		// schemas accept is read.
		_, fastOK := testSpec.parseFast(raw)
		_, slowErr := testSpec.problems(raw)
		if fastOK && slowErr != nil {
			t.Fatalf("the fast path accepted an event the schemas refuse: %v", slowErr)
		}
		ev, err := testSpec.Parse(raw)
		if slowErr == nil && err != nil {
			t.Fatalf("the schemas accept the event but Parse refused it: %v", err)
		}
		if err != nil {
			return
		}
		m, err := testSpec.Map(ev, raw, "platform", rules)
		if err != nil {
			return
		}
		check := func(urn, kind string) {
			if _, err := events.ParseURNOfKind(urn, kind); err != nil {
				t.Fatalf("mapped an invalid %s urn %q: %v", kind, urn, err)
			}
		}
		if m.JobURN != "" {
			check(m.JobURN, events.KindJob)
		}
		for _, d := range m.Datasets {
			check(d.URN, events.KindDataset)
			for _, a := range d.Aliases {
				check(a, events.KindDataset)
			}
		}
		if m.Run != nil {
			for _, u := range append(append([]string{}, m.Run.Inputs...), m.Run.Outputs...) {
				check(u, events.KindDataset)
			}
		}
		for _, q := range m.Quality {
			check(q.DatasetURN, events.KindDataset)
		}
	})
}
