package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// The ACLs below make the emitter identity of DESIGN §3 real on a broker
// with an authorizer: a principal named after a domain may write only the
// topics of its own prefix mesh.<domain>., so an event on mesh.sales.usage
// was published by the sales domain. deployments/kafka-security.md lists
// the same rules as kafka-acls.sh commands.

// DomainACLs lets principal User:<domain> publish to mesh.<domain>.*.
func DomainACLs(domain string) *kadm.ACLBuilder {
	return kadm.NewACLs().Allow("User:"+domain).AllowHosts().
		Topics("mesh."+domain+".").ResourcePatternType(kadm.ACLPatternPrefixed).
		Operations(kadm.OpWrite, kadm.OpDescribe)
}

// IngestorACLs: read every mesh topic in its group, write dead letters and
// the change feed only.
func IngestorACLs(principal, group string) []*kadm.ACLBuilder {
	return []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:"+principal).AllowHosts().Topics("mesh.").ResourcePatternType(kadm.ACLPatternPrefixed).
			Operations(kadm.OpRead, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:"+principal).AllowHosts().Topics(events.TopicDeadLetter, TopicChanges).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(kadm.OpWrite),
		kadm.NewACLs().Allow("User:" + principal).AllowHosts().Groups(group).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(kadm.OpRead),
	}
}

// ScorerACLs: read and write mesh.scores in its group (and check that it is
// compacted), read and write the change feed, nothing else.
func ScorerACLs(principal, group string) []*kadm.ACLBuilder {
	return []*kadm.ACLBuilder{
		kadm.NewACLs().Allow("User:"+principal).AllowHosts().Topics(events.TopicScores).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe, kadm.OpDescribeConfigs),
		kadm.NewACLs().Allow("User:"+principal).AllowHosts().Topics(TopicChanges).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(kadm.OpRead, kadm.OpWrite, kadm.OpDescribe),
		kadm.NewACLs().Allow("User:" + principal).AllowHosts().Groups(group).ResourcePatternType(kadm.ACLPatternLiteral).
			Operations(kadm.OpRead),
	}
}

// CreateACLs applies ACLs as an administrator.
func CreateACLs(ctx context.Context, cl *kgo.Client, acls ...*kadm.ACLBuilder) error {
	adm := kadm.NewClient(cl)
	var errs []error
	for _, b := range acls {
		res, err := adm.CreateACLs(ctx, b)
		if err != nil {
			return fmt.Errorf("create acls: %w", err)
		}
		for _, r := range res {
			if r.Err != nil {
				errs = append(errs, fmt.Errorf("acl %s %s %s: %w", r.Principal, r.Type, r.Name, r.Err))
			}
		}
	}
	return errors.Join(errs...)
}
