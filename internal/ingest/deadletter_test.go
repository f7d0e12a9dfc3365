package ingest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"testing"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/internal/store"
)

func TestDeadLetterFits(t *testing.T) {
	const limit = 64 << 10
	big := bytes.Repeat([]byte{'v'}, 1<<20)
	tests := []struct {
		name      string
		rec       *kgo.Record
		truncated string // "" when nothing may be cut
	}{
		{"small record kept whole", &kgo.Record{Topic: "mesh.sales.usage", Key: []byte("k"), Value: []byte("tiny")}, ""},
		{"megabyte value cut", &kgo.Record{Topic: "mesh.sales.usage", Key: []byte("k"), Value: big}, "value"},
		{"megabyte key cut too", &kgo.Record{Topic: "mesh.sales.usage", Key: big, Value: big}, "value,key"},
		{"huge original headers dropped", &kgo.Record{Topic: "mesh.sales.usage", Value: big,
			Headers: []kgo.RecordHeader{{Key: "trace", Value: big[:limit]}}}, "value,headers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dl := deadLetter(tt.rec, refuse("invalid_event", "%s", strings.Repeat("e", 10_000)), limit)
			if n := recordBytes(dl); n > limit {
				t.Fatalf("dead letter is %d bytes, limit %d", n, limit)
			}
			if got := headerValue(dl, HeaderTruncated); got != tt.truncated {
				t.Fatalf("truncated = %q, want %q", got, tt.truncated)
			}
			for _, h := range []string{HeaderReason, HeaderError, HeaderTopic, HeaderPartition, HeaderOffset, HeaderTime} {
				if headerValue(dl, h) == "" {
					t.Errorf("header %s missing", h)
				}
			}
			if len(headerValue(dl, HeaderError)) > maxErrorHeader+20 {
				t.Errorf("error header not bounded: %d bytes", len(headerValue(dl, HeaderError)))
			}
			if tt.truncated == "" {
				if !bytes.Equal(dl.Value, tt.rec.Value) {
					t.Fatal("value changed")
				}
				return
			}
			sum := sha256.Sum256(tt.rec.Value)
			if headerValue(dl, HeaderSHA256) != hex.EncodeToString(sum[:]) || headerValue(dl, HeaderOriginalSize) != strconv.Itoa(len(tt.rec.Value)) {
				t.Fatalf("size/hash headers: %s %s", headerValue(dl, HeaderOriginalSize), headerValue(dl, HeaderSHA256))
			}
			if !bytes.HasPrefix(tt.rec.Value, dl.Value) || len(dl.Value) == 0 {
				t.Fatalf("cut value is not a non-empty prefix of the original (%d bytes)", len(dl.Value))
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	exc := func(code int32, msg string) error { return &clickhouse.Exception{Code: code, Message: msg} }
	tests := []struct {
		name                          string
		err                           error
		data, membership, large, auth bool
	}{
		{"type mismatch", exc(53, "Type mismatch"), true, false, false, false},
		{"too many partitions in one block", exc(252, "Too many partitions for single INSERT block (more than 100)"), true, false, false, false},
		{"too many parts: merges behind", exc(252, "Too many parts (300). Merges are processing significantly slower than inserts"), false, false, false, false},
		{"memory limit", exc(241, "Memory limit exceeded"), false, false, false, false},
		{"table read-only", exc(242, "Table is in readonly mode"), false, false, false, false},
		{"connection refused", errorString("dial tcp 127.0.0.1:9000: connect: connection refused"), false, false, false, false},
		{"client-side append", wrap(store.ErrAppend), true, false, false, false},
		{"unknown member", wrap(kerr.UnknownMemberID), false, true, false, false},
		{"illegal generation", wrap(kerr.IllegalGeneration), false, true, false, false},
		{"rebalance in progress", wrap(kerr.RebalanceInProgress), false, true, false, false},
		{"coordinator moved", wrap(kerr.NotCoordinator), false, false, false, false},
		{"message too large", wrap(kerr.MessageTooLarge), false, false, true, false},
		{"topic authorization", wrap(kerr.TopicAuthorizationFailed), false, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := insertDataError(tt.err); got != tt.data {
				t.Errorf("insertDataError = %v", got)
			}
			if got := membershipError(tt.err); got != tt.membership {
				t.Errorf("membershipError = %v", got)
			}
			if got := tooLarge(tt.err); got != tt.large {
				t.Errorf("tooLarge = %v", got)
			}
			if got := authorizationError(tt.err); got != tt.auth {
				t.Errorf("authorizationError = %v", got)
			}
		})
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

type wrapped struct{ err error }

func (w wrapped) Error() string { return "context: " + w.err.Error() }
func (w wrapped) Unwrap() error { return w.err }

func wrap(err error) error { return wrapped{err} }
