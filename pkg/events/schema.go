package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// schema is a parsed Avro schema: enough of it to compute the Parsing
// Canonical Form and to resolve a writer schema against a reader schema.
// goavro compiles codecs but exposes neither, so meshpulse parses the
// schema text itself, once, when the codecs load.
type schema struct {
	typ     string // null boolean int long float double bytes string record enum array map fixed union
	logical string // logicalType, e.g. timestamp-millis

	// Named types (record, enum, fixed).
	name    string   // full name
	aliases []string // full names

	fields      []*schemaField // record
	symbols     []string       // enum
	enumDefault *string        // enum: reader default for unknown symbols
	size        int            // fixed
	items       *schema        // array
	values      *schema        // map
	branches    []*schema      // union
}

type schemaField struct {
	name    string
	aliases []string
	typ     *schema
	def     any // JSON default; valid when hasDef
	hasDef  bool
}

var primitiveTypes = map[string]bool{"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true}

// parseSchema parses schema JSON text.
func parseSchema(text string) (*schema, error) {
	var raw any
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("schema is not JSON: %w", err)
	}
	p := &schemaParser{named: map[string]*schema{}}
	return p.parse(raw, "")
}

type schemaParser struct {
	named map[string]*schema // full name -> definition
}

func (p *schemaParser) parse(raw any, ns string) (*schema, error) {
	switch t := raw.(type) {
	case string:
		if primitiveTypes[t] {
			return &schema{typ: t}, nil
		}
		full := qualify(t, ns)
		if s, ok := p.named[full]; ok {
			return s, nil
		}
		if s, ok := p.named[t]; ok {
			return s, nil
		}
		return nil, fmt.Errorf("unknown type %q", t)
	case []any:
		u := &schema{typ: "union"}
		for _, b := range t {
			s, err := p.parse(b, ns)
			if err != nil {
				return nil, err
			}
			u.branches = append(u.branches, s)
		}
		return u, nil
	case map[string]any:
		typ, _ := t["type"].(string)
		if typ == "" {
			// {"type": {...}} or {"type": [...]}: a nested definition.
			if inner, ok := t["type"]; ok {
				return p.parse(inner, ns)
			}
			return nil, fmt.Errorf("schema object without type")
		}
		logical, _ := t["logicalType"].(string)
		if primitiveTypes[typ] {
			return &schema{typ: typ, logical: logical}, nil
		}
		switch typ {
		case "array":
			items, err := p.parse(t["items"], ns)
			if err != nil {
				return nil, fmt.Errorf("array items: %w", err)
			}
			return &schema{typ: typ, items: items, logical: logical}, nil
		case "map":
			values, err := p.parse(t["values"], ns)
			if err != nil {
				return nil, fmt.Errorf("map values: %w", err)
			}
			return &schema{typ: typ, values: values, logical: logical}, nil
		case "record", "error", "enum", "fixed":
			name, _ := t["name"].(string)
			if name == "" {
				return nil, fmt.Errorf("%s without a name", typ)
			}
			if n, ok := t["namespace"].(string); ok && !strings.Contains(name, ".") {
				ns = n
			}
			s := &schema{typ: typ, logical: logical, name: qualify(name, ns)}
			if typ == "error" {
				s.typ = "record"
			}
			childNS := namespaceOf(s.name)
			for _, a := range stringList(t["aliases"]) {
				s.aliases = append(s.aliases, qualify(a, childNS))
			}
			if _, dup := p.named[s.name]; dup {
				return nil, fmt.Errorf("type %s is defined twice", s.name)
			}
			p.named[s.name] = s // before the fields: a record may refer to itself
			switch s.typ {
			case "record":
				fields, _ := t["fields"].([]any)
				for _, f := range fields {
					fm, ok := f.(map[string]any)
					if !ok {
						return nil, fmt.Errorf("record %s: field is not an object", s.name)
					}
					fname, _ := fm["name"].(string)
					ft, err := p.parse(fm["type"], childNS)
					if err != nil {
						return nil, fmt.Errorf("record %s field %s: %w", s.name, fname, err)
					}
					def, hasDef := fm["default"]
					s.fields = append(s.fields, &schemaField{name: fname, aliases: stringList(fm["aliases"]), typ: ft, def: def, hasDef: hasDef})
				}
			case "enum":
				s.symbols = stringList(t["symbols"])
				if d, ok := t["default"].(string); ok {
					s.enumDefault = &d
				}
			case "fixed":
				n, err := jsonInt(t["size"])
				if err != nil {
					return nil, fmt.Errorf("fixed %s size: %w", s.name, err)
				}
				s.size = n
			}
			return s, nil
		}
		return nil, fmt.Errorf("unknown type %q", typ)
	}
	return nil, fmt.Errorf("schema must be a string, an array or an object, got %T", raw)
}

func qualify(name, ns string) string {
	if strings.Contains(name, ".") || ns == "" {
		return name
	}
	return ns + "." + name
}

func namespaceOf(full string) string {
	if i := strings.LastIndex(full, "."); i >= 0 {
		return full[:i]
	}
	return ""
}

func shortName(full string) string { return full[strings.LastIndex(full, ".")+1:] }

func stringList(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func jsonInt(v any) (int, error) {
	switch n := v.(type) {
	case json.Number:
		i, err := strconv.Atoi(n.String())
		return i, err
	case string:
		return strconv.Atoi(n)
	}
	return 0, fmt.Errorf("%v is not an integer", v)
}

// canonicalForm is the Avro specification's Parsing Canonical Form, as
// Apache Avro Java's SchemaNormalization writes it: primitives as bare
// names ([PRIMITIVES], so {"type":"long","logicalType":...} is "long"),
// full names ([FULLNAMES]), only name/type/fields/symbols/items/values/size
// in that order ([STRIP], [ORDER]), no white space, and a named type written
// out once, then referred to by its full name.
func canonicalForm(s *schema) string {
	var b strings.Builder
	writeCanonical(&b, s, map[string]bool{})
	return b.String()
}

func writeCanonical(b *strings.Builder, s *schema, seen map[string]bool) {
	switch s.typ {
	case "union":
		b.WriteByte('[')
		for i, br := range s.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			writeCanonical(b, br, seen)
		}
		b.WriteByte(']')
	case "array":
		b.WriteString(`{"type":"array","items":`)
		writeCanonical(b, s.items, seen)
		b.WriteByte('}')
	case "map":
		b.WriteString(`{"type":"map","values":`)
		writeCanonical(b, s.values, seen)
		b.WriteByte('}')
	case "record", "enum", "fixed":
		if seen[s.name] {
			b.WriteString(strconv.Quote(s.name))
			return
		}
		seen[s.name] = true
		b.WriteString(`{"name":` + strconv.Quote(s.name) + `,"type":"` + s.typ + `"`)
		switch s.typ {
		case "record":
			b.WriteString(`,"fields":[`)
			for i, f := range s.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":` + strconv.Quote(f.name) + `,"type":`)
				writeCanonical(b, f.typ, seen)
				b.WriteByte('}')
			}
			b.WriteByte(']')
		case "enum":
			b.WriteString(`,"symbols":[`)
			for i, sym := range s.symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.Quote(sym))
			}
			b.WriteByte(']')
		case "fixed":
			b.WriteString(`,"size":` + strconv.Itoa(s.size))
		}
		b.WriteByte('}')
	default: // primitives; logical types are stripped
		b.WriteString(`"` + s.typ + `"`)
	}
}

// rabinEmpty is CRC-64-AVRO's fingerprint of the empty string.
const rabinEmpty uint64 = 0xc15d213aa4d7a795

var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// fingerprint64 is the CRC-64-AVRO (Rabin) fingerprint of b, as the Avro
// specification defines it for single-object encoding.
func fingerprint64(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}
