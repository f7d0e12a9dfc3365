package events

import (
	"fmt"
	"strings"
)

// URN kinds meshpulse knows.
const (
	KindProduct = "product"
	KindDataset = "dataset"
	KindJob     = "job"
)

const urnPrefix = "urn:mesh:"

// isDomain says what a domain (and an emitter, and a job namespace) may
// look like. It is the same alphabet the topic pattern mesh.<emitter>.<family>
// accepts, so every domain can have topics.
func isDomain(d string) bool {
	if d == "" || d[0] == '-' {
		return false
	}
	for i := 0; i < len(d); i++ {
		if c := d[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// URN is a parsed canonical meshpulse URN: urn:mesh:<kind>:<scope>:<name>.
// Scope is the domain of a product, the platform of a dataset and the
// namespace of a job; Name is the product name, dataset path or job name
// and may itself contain colons.
type URN struct {
	Kind  string
	Scope string
	Name  string
}

// String renders the canonical form.
func (u URN) String() string { return urnPrefix + u.Kind + ":" + u.Scope + ":" + u.Name }

// ParseURN parses and validates a URN of any known kind.
func ParseURN(s string) (URN, error) {
	if !strings.HasPrefix(s, urnPrefix) {
		return URN{}, fmt.Errorf("urn %q: must start with %q", s, urnPrefix)
	}
	parts := strings.SplitN(s[len(urnPrefix):], ":", 3)
	if len(parts) != 3 {
		return URN{}, fmt.Errorf("urn %q: want urn:mesh:<kind>:<scope>:<name>", s)
	}
	u := URN{Kind: parts[0], Scope: parts[1], Name: parts[2]}
	switch u.Kind {
	case KindProduct, KindJob:
		if !isDomain(u.Scope) {
			return URN{}, fmt.Errorf("urn %q: %s %q must be lower-case letters, digits and dashes", s, scopeWord(u.Kind), u.Scope)
		}
	case KindDataset:
		if u.Scope == "" || u.Scope != strings.ToLower(u.Scope) {
			return URN{}, fmt.Errorf("urn %q: platform %q must be non-empty and lower-case", s, u.Scope)
		}
	default:
		return URN{}, fmt.Errorf("urn %q: unknown kind %q (want product, dataset or job)", s, u.Kind)
	}
	if u.Name == "" {
		return URN{}, fmt.Errorf("urn %q: empty name", s)
	}
	if strings.ContainsAny(u.Name, " \t\r\n") {
		return URN{}, fmt.Errorf("urn %q: name must not contain white space", s)
	}
	for _, p := range strings.Split(u.Name, ":") {
		if p == "" {
			return URN{}, fmt.Errorf("urn %q: empty part in name", s)
		}
	}
	return u, nil
}

// ParseURNOfKind parses s and checks that it is of the given kind.
func ParseURNOfKind(s, kind string) (URN, error) {
	u, err := ParseURN(s)
	if err != nil {
		return URN{}, err
	}
	if u.Kind != kind {
		return URN{}, fmt.Errorf("urn %q: is a %s urn, want a %s urn", s, u.Kind, kind)
	}
	return u, nil
}

// ProductURN builds the canonical URN of a data product.
func ProductURN(domain, name string) string { return URN{KindProduct, domain, name}.String() }

// DatasetURN builds the canonical URN of a dataset.
func DatasetURN(platform, path string) string { return URN{KindDataset, platform, path}.String() }

// JobURN builds the canonical URN of a job.
func JobURN(namespace, name string) string { return URN{KindJob, namespace, name}.String() }

// ValidDomain reports whether d can be a domain or emitter name.
func ValidDomain(d string) bool { return isDomain(d) }

func scopeWord(kind string) string {
	if kind == KindJob {
		return "namespace"
	}
	return "domain"
}
