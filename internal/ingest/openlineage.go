package ingest

import (
	"errors"
	"fmt"
	"time"

	"github.com/meshpulse/meshpulse/internal/openlineage"
	"github.com/meshpulse/meshpulse/internal/store"
	"github.com/meshpulse/meshpulse/pkg/events"
)

// Dead-letter reasons of OpenLineage records.
const (
	ReasonOpenLineageMalformed  = "openlineage_malformed"  // not a JSON object
	ReasonOpenLineageInvalid    = "openlineage_invalid"    // against the OpenLineage schemas
	ReasonOpenLineageUnmappable = "openlineage_unmappable" // an identity no URN can hold
)

// decodeOpenLineage validates and maps an OpenLineage record, then holds
// what it became to the same limits as native events.
func (i *Ingestor) decodeOpenLineage(value []byte, emitter string, now time.Time) decoded {
	ev, err := i.ol.Parse(value)
	if err != nil {
		var me *openlineage.MalformedError
		if errors.As(err, &me) {
			return decoded{emitter: emitter, ref: refuse(ReasonOpenLineageMalformed, "%v", err)}
		}
		return decoded{emitter: emitter, ref: refuse(ReasonOpenLineageInvalid, "%v", err)}
	}
	m, err := i.ol.Map(ev, value, emitter, i.rules)
	if err != nil {
		return decoded{emitter: emitter, ref: refuse(ReasonOpenLineageUnmappable, "%v", err)}
	}
	if ref := i.checkOpenLineage(m, now); ref != nil {
		return decoded{emitter: emitter, ref: ref}
	}
	return decoded{ol: m, emitter: emitter}
}

func (i *Ingestor) checkOpenLineage(m *openlineage.Mapped, now time.Time) *refusal {
	var natives []events.Event
	if m.Run != nil {
		natives = append(natives, m.Run)
	}
	for _, q := range m.Quality {
		natives = append(natives, q)
	}
	for _, ev := range natives {
		if err := ev.ValidateWith(i.cfg.Limits, now); err != nil {
			reason := events.ReasonInvalidEvent
			var ve *events.ValidationError
			if errors.As(err, &ve) {
				reason = ve.Reason()
			}
			return refuse(reason, "as a native %s event: %v", ev.Family(), err)
		}
	}
	l := i.cfg.Limits
	if from, to := now.Add(-l.EventTimePast), now.Add(l.EventTimeFuture); m.EventTime.Before(from) || m.EventTime.After(to) {
		return refuse(events.ReasonEventTimeWindow, "eventTime %s is outside the accepted window [now-%s, now+%s]",
			m.EventTime.Format(time.RFC3339), l.EventTimePast, l.EventTimeFuture)
	}
	if st := m.Static; st != nil && len(st.Inputs)*len(st.Outputs) > l.MaxLineageEdges {
		return refuse(events.ReasonTooManyEdges, "job event with %d inputs and %d outputs makes more than %d edges", len(st.Inputs), len(st.Outputs), l.MaxLineageEdges)
	}
	for _, d := range m.Datasets {
		if len(d.Fields) > l.MaxListLen || len(d.Owners) > l.MaxListLen || len(d.Aliases) > l.MaxListLen {
			return refuse(events.ReasonListTooLong, "dataset %s: %d fields, %d owners, %d symlinks; at most %d each", d.URN, len(d.Fields), len(d.Owners), len(d.Aliases), l.MaxListLen)
		}
	}
	return nil
}

// authoriseOpenLineage holds each part of an OpenLineage event to the
// ownership rules of its native family: the run (or a JobEvent's lineage)
// as a lineage run, each assertion as a quality result. One refused part
// refuses the record. It returns the owning domain of each quality
// result's dataset.
func authoriseOpenLineage(emitter string, m *openlineage.Mapped, owners ownerLookup) ([]string, *refusal) {
	if m.Run != nil {
		if _, ref := authorise(emitter, m.Run, owners); ref != nil {
			return nil, ref
		}
	}
	if st := m.Static; st != nil {
		run := &events.LineageRun{Envelope: events.Envelope{Emitter: emitter}, JobURN: st.JobURN, Outputs: st.Outputs}
		if _, ref := authorise(emitter, run, owners); ref != nil {
			return nil, ref
		}
	}
	qualityOwners := make([]string, len(m.Quality))
	for j, q := range m.Quality {
		owner, ref := authorise(emitter, q, owners)
		if ref != nil {
			return nil, ref
		}
		qualityOwners[j] = owner
	}
	return qualityOwners, nil
}

// addOpenLineageRows appends an authorised OpenLineage event's rows: its
// run and quality results in the native tables, the rest in its own.
func addOpenLineageRows(b *store.Batch, m *openlineage.Mapped, qualityOwners []string) {
	if m.Run != nil {
		b.AddLineage(m.Run)
	}
	for j, q := range m.Quality {
		b.AddQuality(q, qualityOwners[j])
	}
	b.AddOpenLineage(m)
}

func olSummary(m *openlineage.Mapped) string {
	return fmt.Sprintf("%s %s of %s/%s", m.Kind, m.EventType, m.JobNamespace, m.JobName)
}
