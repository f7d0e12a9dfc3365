package events

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bytes to the decoder (framing, fingerprint
// lookup, Avro body, schema resolution) and validates whatever decodes:
// nothing may panic, and every refusal names its reason.
func FuzzDecode(f *testing.F) {
	codecs, err := NewCodecs()
	if err != nil {
		f.Fatal(err)
	}
	for _, ev := range sampleEvents() {
		b, err := codecs.Encode(ev)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append([]byte{0, 0, 0, 0, 1}, b[10:]...))
	}
	f.Add([]byte{})
	f.Add([]byte{0xC3, 0x01})
	f.Add([]byte("definitely not avro"))
	f.Add(allocationBomb(codecs))
	codecs.WithRegistry(fakeRegistry{1: codecs.Current(FamilyUsage).Schema()})
	now := time.Now()
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := codecs.Decode(context.Background(), b)
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || de.Reason == "" || de.Err == nil {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if err := ev.ValidateWith(DefaultLimits(), now); err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Reason() == "" || len(ve.Fields) == 0 {
				t.Fatalf("invalid event without a reason: %v", err)
			}
		}
	})
}

// FuzzParseURN: any string either parses to a URN that renders back to
// itself, or is refused with a message.
func FuzzParseURN(f *testing.F) {
	for _, s := range []string{"urn:mesh:product:sales:orders", "urn:mesh:dataset:s3:b:p/x", "urn:mesh:job:a:b", "urn:mesh::", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := ParseURN(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("refusal without a message")
			}
			return
		}
		if u.String() != s {
			t.Fatalf("ParseURN(%q) renders as %q", s, u.String())
		}
	})
}
