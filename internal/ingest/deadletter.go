package ingest

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/meshpulse/meshpulse/pkg/events"
)

// Dead-letter headers. The record keeps its original key, value and headers
// unless it is too large for the dead-letter topic: then the value (and if
// need be the key and the original headers) are cut, and the original size
// and SHA-256 say what the record was.
const (
	HeaderReason       = "mesh.dlq.reason"
	HeaderError        = "mesh.dlq.error"
	HeaderTopic        = "mesh.dlq.topic"
	HeaderPartition    = "mesh.dlq.partition"
	HeaderOffset       = "mesh.dlq.offset"
	HeaderTime         = "mesh.dlq.time"
	HeaderTruncated    = "mesh.dlq.truncated"     // "value", "value,key", ... what was cut
	HeaderOriginalSize = "mesh.dlq.original_size" // bytes of the original value
	HeaderSHA256       = "mesh.dlq.sha256"        // of the original value, hex
	HeaderKeySHA256    = "mesh.dlq.key_sha256"    // of the original key, when it was cut
)

// maxErrorHeader bounds the error message carried in a header.
const maxErrorHeader = 2 << 10

// deadLetter wraps a refused record for mesh.deadletter, within maxBytes.
func deadLetter(r *kgo.Record, ref *refusal, maxBytes int) *kgo.Record {
	msg := ref.msg
	if len(msg) > maxErrorHeader {
		msg = msg[:maxErrorHeader] + "… (cut)"
	}
	meta := []kgo.RecordHeader{
		{Key: HeaderReason, Value: []byte(ref.reason)},
		{Key: HeaderError, Value: []byte(msg)},
		{Key: HeaderTopic, Value: []byte(r.Topic)},
		{Key: HeaderPartition, Value: []byte(strconv.Itoa(int(r.Partition)))},
		{Key: HeaderOffset, Value: []byte(strconv.FormatInt(r.Offset, 10))},
		{Key: HeaderTime, Value: []byte(time.Now().UTC().Format(time.RFC3339Nano))},
	}
	out := &kgo.Record{Topic: events.TopicDeadLetter, Key: r.Key, Value: r.Value,
		Headers: append(append([]kgo.RecordHeader(nil), r.Headers...), meta...)}
	return fitDeadLetter(out, r, meta, maxBytes)
}

// fitDeadLetter cuts a dead letter down to maxBytes: first the value, then
// the original headers, then the key. Nothing that identifies the original
// record (topic, partition, offset, size, hash) is ever cut.
func fitDeadLetter(out, orig *kgo.Record, meta []kgo.RecordHeader, maxBytes int) *kgo.Record {
	if recordBytes(out) <= maxBytes {
		return out
	}
	sum := sha256.Sum256(orig.Value)
	cut := "value"
	meta = append(meta,
		kgo.RecordHeader{Key: HeaderOriginalSize, Value: []byte(strconv.Itoa(len(orig.Value)))},
		kgo.RecordHeader{Key: HeaderSHA256, Value: []byte(hex.EncodeToString(sum[:]))})
	headers := append(append([]kgo.RecordHeader(nil), orig.Headers...), meta...)
	key := orig.Key
	// Room left for the value once key and headers are in.
	budget := func() int {
		n := len(key) + recordOverhead
		for _, h := range headers {
			n += len(h.Key) + len(h.Value) + headerOverhead
		}
		return maxBytes - n - len(HeaderTruncated) - 32
	}
	if budget() < maxBytes/4 && len(orig.Headers) > 0 {
		headers = meta
		cut += ",headers"
	}
	if budget() < maxBytes/4 && len(key) > 256 {
		ks := sha256.Sum256(orig.Key)
		key = orig.Key[:256]
		headers = append(headers, kgo.RecordHeader{Key: HeaderKeySHA256, Value: []byte(hex.EncodeToString(ks[:]))})
		cut += ",key"
	}
	room := max(budget(), 0)
	value := orig.Value
	if len(value) > room {
		value = value[:room]
	}
	headers = append(headers, kgo.RecordHeader{Key: HeaderTruncated, Value: []byte(cut)})
	return &kgo.Record{Topic: out.Topic, Key: key, Value: value, Headers: headers}
}

// Kafka's per-record framing: varints, attributes, timestamps.
const (
	recordOverhead = 64
	headerOverhead = 10
)

func recordBytes(r *kgo.Record) int {
	n := len(r.Key) + len(r.Value) + recordOverhead
	for _, h := range r.Headers {
		n += len(h.Key) + len(h.Value) + headerOverhead
	}
	return n
}

func headerValue(r *kgo.Record, key string) string {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
