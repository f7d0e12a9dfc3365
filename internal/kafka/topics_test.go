package kafka

import (
	"fmt"
	"testing"
)

// TestWithMinInsync: a majority of three or more replicas must have a
// record before it is acknowledged; fewer replicas keep the broker's default.
func TestWithMinInsync(t *testing.T) {
	compact := "compact"
	for _, c := range []struct {
		replication int
		in          map[string]*string
		want        string
	}{
		{1, nil, "map[]"},
		{2, map[string]*string{"cleanup.policy": &compact}, "map[cleanup.policy:compact]"},
		{3, nil, "map[min.insync.replicas:2]"},
		{3, map[string]*string{"cleanup.policy": &compact}, "map[cleanup.policy:compact min.insync.replicas:2]"},
		{5, nil, "map[min.insync.replicas:3]"},
	} {
		got := map[string]string{}
		for k, v := range withMinInsync(c.in, c.replication) {
			got[k] = *v
		}
		if fmt.Sprint(got) != c.want {
			t.Errorf("replication %d: %v, want %s", c.replication, got, c.want)
		}
	}
	in := map[string]*string{}
	withMinInsync(in, 3)
	if len(in) != 0 {
		t.Error("the caller's configs were changed")
	}
}
