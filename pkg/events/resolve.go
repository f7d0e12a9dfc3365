package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// resolver reads a record written with an older (or newer) schema version
// into the shape of the current version, by field name: fields the writer
// did not have get the current schema's default, fields the reader does not
// know are left for the typed conversion to ignore. goavro decodes with the
// writer schema only, so this is the reader half of Avro schema resolution.
type resolver struct {
	root  any            // parsed reader schema
	named map[string]any // full name -> named type definition
}

func newResolver(schemaJSON string) (*resolver, error) {
	var root any
	if err := json.Unmarshal([]byte(schemaJSON), &root); err != nil {
		return nil, fmt.Errorf("parse reader schema: %w", err)
	}
	r := &resolver{root: root, named: map[string]any{}}
	r.index(root, "")
	return r, nil
}

// index records every named type so that references by name resolve.
func (r *resolver) index(s any, ns string) {
	switch t := s.(type) {
	case []any:
		for _, b := range t {
			r.index(b, ns)
		}
	case map[string]any:
		if name, ok := t["name"].(string); ok {
			full, childNS := fullName(name, t, ns)
			r.named[full] = t
			ns = childNS
		}
		if fields, ok := t["fields"].([]any); ok {
			for _, f := range fields {
				if fm, ok := f.(map[string]any); ok {
					r.index(fm["type"], ns)
				}
			}
		}
		if items, ok := t["items"]; ok {
			r.index(items, ns)
		}
		if values, ok := t["values"]; ok {
			r.index(values, ns)
		}
	}
}

func fullName(name string, def map[string]any, ns string) (full, childNS string) {
	if strings.Contains(name, ".") {
		return name, name[:strings.LastIndex(name, ".")]
	}
	if n, ok := def["namespace"].(string); ok {
		ns = n
	}
	if ns == "" {
		return name, ""
	}
	return ns + "." + name, ns
}

// resolve fills v, decoded with a writer schema, to the reader schema s.
func (r *resolver) resolve(v any, s any, ns string) any {
	switch t := s.(type) {
	case string:
		if def, ok := r.lookup(t, ns); ok {
			return r.resolve(v, def, ns)
		}
		return v
	case []any: // union: the native value names its branch
		u, ok := v.(map[string]any)
		if !ok || len(u) != 1 {
			return v
		}
		for branchName, inner := range u {
			for _, b := range t {
				if r.branchName(b, ns) == branchName {
					u[branchName] = r.resolve(inner, b, ns)
				}
			}
		}
		return u
	case map[string]any:
		switch t["type"] {
		case "record":
			m, ok := v.(map[string]any)
			if !ok {
				return v
			}
			_, childNS := fullName(t["name"].(string), t, ns)
			for _, f := range t["fields"].([]any) {
				fm := f.(map[string]any)
				name := fm["name"].(string)
				if val, ok := m[name]; ok {
					m[name] = r.resolve(val, fm["type"], childNS)
				} else if def, ok := fm["default"]; ok {
					m[name] = r.defaultValue(fm["type"], def, childNS)
				}
			}
			return m
		case "array":
			arr, ok := v.([]any)
			if !ok {
				return v
			}
			for i := range arr {
				arr[i] = r.resolve(arr[i], t["items"], ns)
			}
			return arr
		case "map":
			m, ok := v.(map[string]any)
			if !ok {
				return v
			}
			for k := range m {
				m[k] = r.resolve(m[k], t["values"], ns)
			}
			return m
		}
	}
	return v
}

// defaultValue turns a field default, as JSON in the schema, into the native
// form goavro would have decoded.
func (r *resolver) defaultValue(s any, def any, ns string) any {
	switch t := s.(type) {
	case []any: // a union's default is of its first branch
		if len(t) == 0 || t[0] == "null" {
			return nil
		}
		return map[string]any{r.branchName(t[0], ns): r.defaultValue(t[0], def, ns)}
	case string:
		switch t {
		case "null":
			return nil
		case "string", "enum":
			s, _ := def.(string)
			return s
		case "bytes":
			s, _ := def.(string)
			return []byte(s)
		case "int":
			f, _ := def.(float64)
			return int32(f)
		case "long":
			f, _ := def.(float64)
			return int64(f)
		case "float":
			f, _ := def.(float64)
			return float32(f)
		case "double":
			f, _ := def.(float64)
			return f
		case "boolean":
			b, _ := def.(bool)
			return b
		}
		if named, ok := r.lookup(t, ns); ok {
			return r.defaultValue(named, def, ns)
		}
	case map[string]any:
		switch t["type"] {
		case "record":
			_, childNS := fullName(t["name"].(string), t, ns)
			dm, _ := def.(map[string]any)
			out := map[string]any{}
			for _, f := range t["fields"].([]any) {
				fm := f.(map[string]any)
				name := fm["name"].(string)
				if v, ok := dm[name]; ok {
					out[name] = r.defaultValue(fm["type"], v, childNS)
				} else if v, ok := fm["default"]; ok {
					out[name] = r.defaultValue(fm["type"], v, childNS)
				}
			}
			return out
		case "array":
			arr, _ := def.([]any)
			out := make([]any, len(arr))
			for i, v := range arr {
				out[i] = r.defaultValue(t["items"], v, ns)
			}
			return out
		case "map":
			dm, _ := def.(map[string]any)
			out := map[string]any{}
			for k, v := range dm {
				out[k] = r.defaultValue(t["values"], v, ns)
			}
			return out
		case "enum", "fixed":
			s, _ := def.(string)
			return s
		case "long":
			f, _ := def.(float64)
			if t["logicalType"] == "timestamp-millis" {
				return time.UnixMilli(int64(f)).UTC()
			}
			return int64(f)
		default:
			if prim, ok := t["type"].(string); ok {
				return r.defaultValue(prim, def, ns)
			}
		}
	}
	return def
}

// branchName is the key goavro uses for a union member in native form.
func (r *resolver) branchName(s any, ns string) string {
	switch t := s.(type) {
	case string:
		if _, ok := r.lookup(t, ns); ok && !strings.Contains(t, ".") && ns != "" {
			return ns + "." + t
		}
		return t
	case map[string]any:
		if name, ok := t["name"].(string); ok {
			full, _ := fullName(name, t, ns)
			return full
		}
		typ, _ := t["type"].(string)
		if lt, ok := t["logicalType"].(string); ok {
			return typ + "." + lt
		}
		return typ
	}
	return ""
}

func (r *resolver) lookup(name, ns string) (any, bool) {
	if def, ok := r.named[name]; ok {
		return def, true
	}
	if ns != "" {
		def, ok := r.named[ns+"."+name]
		return def, ok
	}
	return nil, false
}
