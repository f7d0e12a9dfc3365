package events

import (
	"strings"
	"testing"
)

// TestHasUpperAgreesWithToLower: the allocation-free check says what
// strings.ToLower(s) != s says.
func TestHasUpperAgreesWithToLower(t *testing.T) {
	for _, s := range []string{"", "warehouse", "Warehouse", "s3-eu", "wh_1", "İstanbul", "straße", "ΣΑΣ", "\xff", "ok\xc3", "ǅ"} {
		if got, want := hasUpper(s), strings.ToLower(s) != s; got != want {
			t.Errorf("hasUpper(%q) = %v, strings.ToLower says %v", s, got, want)
		}
	}
}
