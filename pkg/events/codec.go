package events

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/linkedin/goavro/v2"

	"github.com/meshpulse/meshpulse/schemas"
)

// Reasons a record cannot be decoded. They travel as the dead-letter reason
// header, so they are stable identifiers, not prose.
const (
	ReasonBadFraming         = "bad_framing"
	ReasonUnknownFingerprint = "unknown_fingerprint"
	ReasonUnknownSchemaID    = "unknown_schema_id"
	ReasonNoRegistry         = "no_registry"
	ReasonMalformedBody      = "malformed_body"
	ReasonTrailingBytes      = "trailing_bytes"
	ReasonUnresolvable       = "unresolvable"
)

// DecodeError says why bytes are not an event meshpulse can read.
type DecodeError struct {
	Reason string
	Err    error
	// Temporary is set when retrying may succeed (the schema registry did
	// not answer); such a record must not be dead-lettered.
	Temporary bool
}

func (e *DecodeError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

func decodeErr(reason, format string, args ...any) *DecodeError {
	return &DecodeError{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// goavro trusts an array's or map's block count and a string's length when
// it allocates: a 30-byte record claiming 2^31 array items makes it ask for
// 32 GiB and the process dies ("fatal error: out of memory", which no
// recover catches). Every item takes at least a byte, so a count or size
// beyond the record's own size can only be a lie; these bounds keep one
// allocation within 16 MiB. They are goavro's package settings, so they
// also hold for anything else in the process that uses goavro.
func init() {
	goavro.MaxBlockCount = 1 << 20
	goavro.MaxBlockSize = 16 << 20
}

// SchemaVersion is one released schema of one family.
type SchemaVersion struct {
	Family  Family
	Version int
	// Fingerprint is the CRC-64-AVRO fingerprint of the schema's Parsing
	// Canonical Form as the Avro specification (and Apache Avro Java,
	// fastavro, ...) computes it; producers put it in the single-object header.
	Fingerprint uint64
	// LegacyFingerprint is goavro's fingerprint of the same schema, which
	// meshpulse producers before 2026-11 wrote; it is still accepted.
	LegacyFingerprint uint64
	// Canonical is the Parsing Canonical Form.
	Canonical string
	codec     *goavro.Codec
	parsed    *schema
	// toCurrent reads this version's native values as the current version
	// of the family (nil for the current version itself).
	toCurrent resolution
}

// Schema returns the schema text.
func (v *SchemaVersion) Schema() string { return v.codec.Schema() }

// FingerprintBytes is the fingerprint as the 8 little-endian bytes that
// follow C3 01 on the wire.
func (v *SchemaVersion) FingerprintBytes() []byte {
	return binary.LittleEndian.AppendUint64(nil, v.Fingerprint)
}

// SchemaRegistry looks up a schema by its Confluent Schema Registry id.
type SchemaRegistry interface {
	SchemaByID(ctx context.Context, id int) (string, error)
}

// Codecs knows every embedded schema version. It is built once at start
// and is safe for concurrent use (goavro codecs are).
type Codecs struct {
	byFingerprint map[uint64]*SchemaVersion // canonical and legacy fingerprints
	versions      []*SchemaVersion
	current       map[Family]*SchemaVersion
	registry      SchemaRegistry

	mu     sync.Mutex
	byID   map[int]*SchemaVersion // registry id -> version, cached
	idMiss map[int]error          // ids whose schema is not readable
}

// NewCodecs loads the schemas embedded from schemas/.
func NewCodecs() (*Codecs, error) { return NewCodecsFS(schemas.FS) }

// NewCodecsFS loads <family>/v<N>.avsc files from fsys; the highest version
// of each family is the current one, the type decoding reads into. Every
// older version must resolve to the current one by the Avro rules, or the
// codecs are refused.
func NewCodecsFS(fsys fs.FS) (*Codecs, error) {
	c := &Codecs{
		byFingerprint: map[uint64]*SchemaVersion{},
		current:       map[Family]*SchemaVersion{},
		byID:          map[int]*SchemaVersion{},
		idMiss:        map[int]error{},
	}
	files, err := fs.Glob(fsys, "*/v*.avsc")
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	for _, file := range files {
		fam, err := ParseFamily(path.Dir(file))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", file, err)
		}
		n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(path.Base(file), "v"), ".avsc"))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("schema %s: file name must be v<N>.avsc", file)
		}
		text, err := fs.ReadFile(fsys, file)
		if err != nil {
			return nil, err
		}
		v, err := newVersion(fam, n, string(text))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", file, err)
		}
		if prev, dup := c.byFingerprint[v.Fingerprint]; dup {
			return nil, fmt.Errorf("schema %s has the same canonical form as %s v%d", file, prev.Family, prev.Version)
		}
		c.byFingerprint[v.Fingerprint] = v
		if _, taken := c.byFingerprint[v.LegacyFingerprint]; !taken {
			c.byFingerprint[v.LegacyFingerprint] = v
		}
		c.versions = append(c.versions, v)
		if cur := c.current[fam]; cur == nil || cur.Version < n {
			c.current[fam] = v
		}
	}
	for _, v := range c.versions {
		cur := c.current[v.Family]
		if v == cur {
			continue
		}
		if v.toCurrent, err = compileResolution(v.parsed, cur.parsed); err != nil {
			return nil, fmt.Errorf("schema %s v%d cannot be read as v%d: %w", v.Family, v.Version, cur.Version, err)
		}
	}
	sort.Slice(c.versions, func(i, j int) bool {
		if c.versions[i].Family != c.versions[j].Family {
			return c.versions[i].Family < c.versions[j].Family
		}
		return c.versions[i].Version < c.versions[j].Version
	})
	return c, nil
}

func newVersion(fam Family, n int, text string) (*SchemaVersion, error) {
	codec, err := goavro.NewCodec(text)
	if err != nil {
		return nil, err
	}
	parsed, err := parseSchema(text)
	if err != nil {
		return nil, err
	}
	canon := canonicalForm(parsed)
	return &SchemaVersion{Family: fam, Version: n, Fingerprint: fingerprint64([]byte(canon)),
		LegacyFingerprint: codec.Rabin, Canonical: canon, codec: codec, parsed: parsed}, nil
}

// WithRegistry enables the Confluent wire framing (00 + 4-byte schema id).
func (c *Codecs) WithRegistry(r SchemaRegistry) *Codecs {
	c.registry = r
	return c
}

// Current returns the current schema version of a family.
func (c *Codecs) Current(f Family) *SchemaVersion { return c.current[f] }

// Versions lists every known schema version, ordered by family and version.
func (c *Codecs) Versions() []*SchemaVersion { return c.versions }

// Encode writes ev in Avro single-object encoding with the current schema of
// its family. It does not validate; Producer does.
func (c *Codecs) Encode(ev Event) ([]byte, error) {
	return c.AppendEncode(nil, ev)
}

// AppendEncode is Encode appending to buf.
func (c *Codecs) AppendEncode(buf []byte, ev Event) ([]byte, error) {
	v := c.current[ev.Family()]
	if v == nil {
		return nil, fmt.Errorf("no schema for family %s", ev.Family())
	}
	m, err := toNative(ev)
	if err != nil {
		return nil, err
	}
	out, err := v.appendSingle(buf, m)
	if err != nil {
		return nil, fmt.Errorf("encode %s event: %w", ev.Family(), err)
	}
	return out, nil
}

// appendSingle writes the single-object header with the specification's
// fingerprint (goavro's SingleFromNative would write its own) and the body.
func (v *SchemaVersion) appendSingle(buf []byte, datum map[string]any) ([]byte, error) {
	buf = append(buf, 0xC3, 0x01)
	buf = binary.LittleEndian.AppendUint64(buf, v.Fingerprint)
	return v.codec.BinaryFromNative(buf, datum)
}

// EncodeNative writes a native datum with a given schema version, in
// single-object encoding. Tests use it to play an old producer.
func (c *Codecs) EncodeNative(v *SchemaVersion, datum map[string]any) ([]byte, error) {
	return v.appendSingle(nil, datum)
}

// Decode reads an event in single-object encoding (or, with a registry,
// Confluent framing) into the current Go type of its family.
func (c *Codecs) Decode(ctx context.Context, b []byte) (Event, error) {
	v, m, err := c.DecodeNative(ctx, b)
	if err != nil {
		return nil, err
	}
	return fromNative(v.Family, m), nil
}

// DecodeNative is Decode stopping at the native form, already resolved to
// the current schema (missing fields hold their defaults). It also says
// which schema version wrote the record.
func (c *Codecs) DecodeNative(ctx context.Context, b []byte) (*SchemaVersion, map[string]any, error) {
	var (
		v    *SchemaVersion
		body []byte
	)
	switch {
	case len(b) >= 10 && b[0] == 0xC3 && b[1] == 0x01:
		fp := binary.LittleEndian.Uint64(b[2:10])
		v = c.byFingerprint[fp]
		if v == nil {
			return nil, nil, decodeErr(ReasonUnknownFingerprint, "no embedded schema has fingerprint % x (wire bytes after C3 01); meshpulse schemas lists the known ones", b[2:10])
		}
		body = b[10:]
	case len(b) >= 5 && b[0] == 0x00:
		var err error
		if v, err = c.schemaByID(ctx, int(binary.BigEndian.Uint32(b[1:5]))); err != nil {
			return nil, nil, err
		}
		body = b[5:]
	default:
		return nil, nil, decodeErr(ReasonBadFraming, "%d bytes are neither Avro single-object (C3 01 + fingerprint) nor Confluent (00 + schema id) framed", len(b))
	}
	datum, rest, err := v.codec.NativeFromBinary(body)
	if err != nil {
		return nil, nil, decodeErr(ReasonMalformedBody, "%s v%d body: %v", v.Family, v.Version, err)
	}
	if len(rest) > 0 {
		return nil, nil, decodeErr(ReasonTrailingBytes, "%s v%d body leaves %d bytes unread", v.Family, v.Version, len(rest))
	}
	if v.toCurrent != nil {
		if datum, err = v.toCurrent(datum); err != nil {
			return nil, nil, decodeErr(ReasonUnresolvable, "%s v%d read as v%d: %v", v.Family, v.Version, c.current[v.Family].Version, err)
		}
	}
	m, ok := datum.(map[string]any)
	if !ok {
		return nil, nil, decodeErr(ReasonMalformedBody, "%s v%d datum is %T, not a record", v.Family, v.Version, datum)
	}
	return v, m, nil
}

// schemaByID resolves a Confluent schema id. The registry's schema is used
// as the writer schema: an embedded version when the canonical forms agree,
// otherwise any schema of a known record that resolves to the current one
// (a producer that registered its own compatible variant).
func (c *Codecs) schemaByID(ctx context.Context, id int) (*SchemaVersion, error) {
	if c.registry == nil {
		return nil, decodeErr(ReasonNoRegistry, "Confluent-framed record (schema id %d) but no schema registry is configured", id)
	}
	c.mu.Lock()
	v, err := c.byID[id], c.idMiss[id]
	c.mu.Unlock()
	if v != nil || err != nil {
		return v, err
	}
	if err := ctx.Err(); err != nil {
		return nil, &DecodeError{Reason: ReasonUnknownSchemaID, Err: fmt.Errorf("schema registry lookup of id %d: %w", id, err), Temporary: true}
	}
	text, err := c.registry.SchemaByID(ctx, id)
	if errors.Is(err, ErrSchemaNotFound) {
		miss := decodeErr(ReasonUnknownSchemaID, "schema id %d is not in the registry", id)
		c.mu.Lock()
		c.idMiss[id] = miss
		c.mu.Unlock()
		return nil, miss
	}
	if err != nil {
		return nil, &DecodeError{Reason: ReasonUnknownSchemaID, Err: fmt.Errorf("schema registry lookup of id %d: %w", id, err), Temporary: true}
	}
	v, miss := c.registryVersion(id, text)
	c.mu.Lock()
	defer c.mu.Unlock()
	if miss != nil {
		c.idMiss[id] = miss
		return nil, miss
	}
	c.byID[id] = v
	return v, nil
}

func (c *Codecs) registryVersion(id int, text string) (*SchemaVersion, error) {
	parsed, err := parseSchema(text)
	if err != nil {
		return nil, decodeErr(ReasonUnknownSchemaID, "registry schema id %d does not parse: %v", id, err)
	}
	fp := fingerprint64([]byte(canonicalForm(parsed)))
	if v := c.byFingerprint[fp]; v != nil {
		return v, nil
	}
	for _, cur := range c.current {
		if parsed.typ != "record" || shortName(parsed.name) != shortName(cur.parsed.name) {
			continue
		}
		v, err := newVersion(cur.Family, 0, text)
		if err != nil {
			return nil, decodeErr(ReasonUnknownSchemaID, "registry schema id %d: %v", id, err)
		}
		if v.toCurrent, err = compileResolution(v.parsed, cur.parsed); err != nil {
			return nil, decodeErr(ReasonUnresolvable, "registry schema id %d (%s, fingerprint %016x) cannot be read as %s v%d: %v", id, parsed.name, fp, cur.Family, cur.Version, err)
		}
		return v, nil
	}
	return nil, decodeErr(ReasonUnknownFingerprint, "registry schema id %d (%s, fingerprint %016x) is not a meshpulse event schema", id, parsed.name, fp)
}

// IsTemporary reports whether err is a decode error worth retrying.
func IsTemporary(err error) bool {
	var de *DecodeError
	return errors.As(err, &de) && de.Temporary
}
