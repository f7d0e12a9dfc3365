package events

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
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
	// Cut by hand rather than split: this runs for every URN of every
	// record, and a split allocates.
	kind, rest, ok1 := strings.Cut(s[len(urnPrefix):], ":")
	scope, name, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return URN{}, fmt.Errorf("urn %q: want urn:mesh:<kind>:<scope>:<name>", s)
	}
	u := URN{Kind: kind, Scope: scope, Name: name}
	switch u.Kind {
	case KindProduct, KindJob:
		if !isDomain(u.Scope) {
			return URN{}, fmt.Errorf("urn %q: %s %q must be lower-case letters, digits and dashes", s, scopeWord(u.Kind), u.Scope)
		}
	case KindDataset:
		if u.Scope == "" || hasUpper(u.Scope) {
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
	if strings.HasPrefix(u.Name, ":") || strings.HasSuffix(u.Name, ":") || strings.Contains(u.Name, "::") {
		return URN{}, fmt.Errorf("urn %q: empty part in name", s)
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

// hasUpper reports whether lower-casing s would change it (as
// strings.ToLower(s) != s, without building the lower-cased copy; invalid
// UTF-8 counts, as ToLower replaces it).
func hasUpper(s string) bool {
	if !utf8.ValidString(s) {
		return true
	}
	for _, r := range s {
		if unicode.ToLower(r) != r {
			return true
		}
	}
	return false
}
