package openlineage

import (
	"fmt"
	"strings"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// DatasetURN maps an OpenLineage dataset identity onto a meshpulse dataset
// URN, following the OpenLineage naming spec, where the namespace names the
// data source as scheme://authority and the name the dataset inside it:
//
//	postgres://db.example.com:5432 + shop.public.orders → urn:mesh:dataset:postgres:db.example.com:5432/shop.public.orders
//	s3://lake + /raw/orders                            → urn:mesh:dataset:s3:lake/raw/orders
//	bigquery + proj.sales.orders                        → urn:mesh:dataset:bigquery:proj.sales.orders
//	file + /data/orders.csv                             → urn:mesh:dataset:file:/data/orders.csv
//	arn:aws:glue:eu-west-1:123 + table/db/orders        → urn:mesh:dataset:arn:aws:glue:eu-west-1:123/table/db/orders
//
// The platform is the scheme, lower-cased, with any character other than
// letters, digits, '.', '+' and '-' made '-' (jdbc:postgresql → jdbc-postgresql).
// The path keeps its case; white space and '%' are percent-encoded, and
// colons too when the path would otherwise have an empty part.
func DatasetURN(namespace, name string) (string, error) {
	ns, n := strings.TrimSpace(namespace), strings.TrimSpace(name)
	if ns == "" || n == "" {
		return "", fmt.Errorf("dataset (namespace %q, name %q): both must be non-empty", namespace, name)
	}
	var platform, authority string
	if i := strings.Index(ns, "://"); i > 0 {
		platform, authority = ns[:i], strings.TrimRight(ns[i+3:], "/")
	} else if i := strings.IndexByte(ns, ':'); i > 0 {
		platform, authority = ns[:i], ns[i+1:]
	} else {
		platform = ns
	}
	if strings.Trim(platformOf(platform), "-.+") == "" {
		return "", fmt.Errorf("dataset (namespace %q, name %q): namespace names no platform", namespace, name)
	}
	p := pathOf(authority, n)
	if p == "" {
		return "", fmt.Errorf("dataset (namespace %q, name %q): empty path", namespace, name)
	}
	urn := "urn:mesh:dataset:" + platformOf(platform) + ":" + escapePath(p)
	if _, err := events.ParseURNOfKind(urn, events.KindDataset); err != nil {
		return "", fmt.Errorf("dataset (namespace %q, name %q): %w", namespace, name, err)
	}
	return urn, nil
}

func pathOf(authority, name string) string {
	if authority == "" {
		return name
	}
	return authority + "/" + strings.TrimLeft(name, "/")
}

func platformOf(s string) string {
	s = strings.ToLower(s)
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '+' || c == '-') {
			b[i] = '-'
		}
	}
	return string(b)
}

// escapePath percent-encodes what a URN name may not hold.
func escapePath(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '%' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	if strings.HasPrefix(out, ":") || strings.HasSuffix(out, ":") || strings.Contains(out, "::") {
		out = strings.ReplaceAll(out, ":", "%3A")
	}
	return out
}

// JobURN is the URN of an OpenLineage job of a domain:
// urn:mesh:job:<domain>:<namespace>/<name>.
func JobURN(domain, namespace, name string) (string, error) {
	ns, n := strings.TrimSpace(namespace), strings.TrimSpace(name)
	if ns == "" || n == "" {
		return "", fmt.Errorf("job (namespace %q, name %q): both must be non-empty", namespace, name)
	}
	urn := "urn:mesh:job:" + domain + ":" + escapePath(ns+"/"+n)
	if _, err := events.ParseURNOfKind(urn, events.KindJob); err != nil {
		return "", fmt.Errorf("job (namespace %q, name %q): %w", namespace, name, err)
	}
	return urn, nil
}

// NamespaceRule gives the jobs of matching namespaces to a domain.
type NamespaceRule struct {
	Pattern string // '*' matches any run of characters
	Domain  string
}

// NamespaceRules decide which domain a job belongs to, first match wins.
// A job no rule matches belongs to the emitter: the domain whose API key
// or topic sent it (platform for the shared tooling).
type NamespaceRules []NamespaceRule

// ParseNamespaceRules reads "pattern=domain,pattern=domain".
func ParseNamespaceRules(s string) (NamespaceRules, error) {
	var rules NamespaceRules
	var errs []string
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		pattern, domain, ok := strings.Cut(part, "=")
		pattern, domain = strings.TrimSpace(pattern), strings.TrimSpace(domain)
		switch {
		case !ok || pattern == "":
			errs = append(errs, fmt.Sprintf("%q: want pattern=domain", part))
		case !events.ValidDomain(domain):
			errs = append(errs, fmt.Sprintf("%q: domain %q must be lower-case letters, digits and dashes", part, domain))
		default:
			rules = append(rules, NamespaceRule{Pattern: pattern, Domain: domain})
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("openlineage namespace rules: %s", strings.Join(errs, "; "))
	}
	return rules, nil
}

// Domain returns the domain of a job namespace, or emitter when no rule
// matches.
func (r NamespaceRules) Domain(namespace, emitter string) string {
	for _, rule := range r {
		if glob(rule.Pattern, namespace) {
			return rule.Domain
		}
	}
	return emitter
}

// glob matches s against a pattern where '*' is any run of characters.
func glob(pattern, s string) bool {
	parts := strings.Split(pattern, "*")
	if len(parts) == 1 {
		return pattern == s
	}
	if !strings.HasPrefix(s, parts[0]) {
		return false
	}
	s = s[len(parts[0]):]
	for _, p := range parts[1 : len(parts)-1] {
		i := strings.Index(s, p)
		if i < 0 {
			return false
		}
		s = s[i+len(p):]
	}
	return strings.HasSuffix(s, parts[len(parts)-1])
}
