package ingest

import (
	"fmt"
	"strings"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Dead-letter reasons decided by the ingestor (decode reasons come from
// pkg/events).
const (
	ReasonWrongFamily     = "wrong_family"
	ReasonEmitterMismatch = "emitter_mismatch"
	ReasonOwnership       = "ownership"
)

// refusal is why a record goes to the dead-letter topic.
type refusal struct {
	reason string
	msg    string
}

func (r *refusal) Error() string { return r.reason + ": " + r.msg }

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// ownerLookup is what authorise needs of Owners.
type ownerLookup interface{ Owner(dataset string) string }

// authorise enforces DESIGN §3 for an event that arrived on the topic of
// emitter: a domain speaks only for its own products. It returns the owning
// domain of the dataset the event is about ("" for metadata and lineage,
// or when no product declares the dataset).
//
//   - metadata for urn:mesh:product:<d>:… only from mesh.<d>.metadata, and
//     only for datasets no other domain declares;
//   - lineage from the job's own namespace or platform, and a domain's job may
//     not write into another domain's datasets;
//   - quality from the dataset's owner or platform;
//   - usage from the owner, platform, or the consumer's own domain.
//
// A dataset no product declares has no owner to protect and is accepted.
func authorise(emitter string, ev events.Event, owners ownerLookup) (string, *refusal) {
	if ev.Header().Emitter != emitter {
		return "", refuse(ReasonEmitterMismatch, "event says emitter %q but arrived on a topic of %q", ev.Header().Emitter, emitter)
	}
	platform := emitter == events.PlatformEmitter
	switch e := ev.(type) {
	case *events.ProductMetadata:
		if e.Domain != emitter {
			return "", refuse(ReasonOwnership, "metadata for %s (domain %q) is accepted only from mesh.%s.metadata, not from %q", e.ProductURN, e.Domain, e.Domain, emitter)
		}
		for _, o := range e.Outputs {
			if owner := owners.Owner(o.DatasetURN); owner != "" && owner != e.Domain {
				return "", refuse(ReasonOwnership, "output %s is owned by domain %q; %q cannot declare it", o.DatasetURN, owner, e.Domain)
			}
		}
		return "", nil
	case *events.LineageRun:
		u, _ := events.ParseURN(e.JobURN)
		if !platform && u.Scope != emitter {
			return "", refuse(ReasonOwnership, "run of job %s (namespace %q) is accepted only from its own domain or platform, not from %q", e.JobURN, u.Scope, emitter)
		}
		if !platform {
			var foreign []string
			for _, out := range e.Outputs {
				if owner := owners.Owner(out); owner != "" && owner != emitter {
					foreign = append(foreign, fmt.Sprintf("%s (owned by %q)", out, owner))
				}
			}
			if len(foreign) > 0 {
				return "", refuse(ReasonOwnership, "job %s of domain %q writes datasets of other domains: %s", e.JobURN, emitter, strings.Join(foreign, ", "))
			}
		}
		return "", nil
	case *events.QualityResult:
		owner := owners.Owner(e.DatasetURN)
		if !platform && owner != "" && owner != emitter {
			return "", refuse(ReasonOwnership, "quality of %s is accepted from its owner %q or platform, not from %q", e.DatasetURN, owner, emitter)
		}
		return owner, nil
	case *events.UsageEvent:
		owner := owners.Owner(e.DatasetURN)
		if !platform && owner != "" && owner != emitter && e.Consumer.Domain != emitter {
			return "", refuse(ReasonOwnership, "usage of %s (owned by %q) reported by %q for a consumer of domain %q: a domain reports only its own consumers' reads", e.DatasetURN, owner, emitter, e.Consumer.Domain)
		}
		return owner, nil
	}
	return "", refuse(ReasonWrongFamily, "%s events are not ingested", ev.Family())
}
