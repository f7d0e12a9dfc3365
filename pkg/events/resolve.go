package events

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// This file is the reader half of Avro schema resolution, as the
// specification defines it: goavro decodes a record with the schema that
// wrote it, and a resolution plan turns that native value into the shape of
// the reader (current) schema — fields matched by name or alias, missing
// fields filled from the reader's defaults, numeric promotions (int → long,
// float, double; long → float, double; float → double), string ↔ bytes,
// a non-union wrapped into the first matching branch of a reader union and
// a writer union unwrapped, enum symbols mapped (or the reader's default).
//
// A plan is compiled when the codecs load, so a pair of versions that can
// never be read into the current one is refused at start, not discovered
// record by record. What can only fail for some values (an enum symbol the
// reader lacks, a union branch with no counterpart) fails that record with
// ErrUnresolvable, never with a silent zero.

// ErrUnresolvable is wrapped by a value the reader schema cannot represent.
var ErrUnresolvable = errors.New("value cannot be resolved to the reader schema")

// resolution converts one native value of the writer schema.
type resolution func(v any) (any, error)

func identity(v any) (any, error) { return v, nil }

// compileResolution builds the plan reading writer-schema values as reader-schema values.
func compileResolution(w, r *schema) (resolution, error) {
	return (&resolver{building: map[[2]*schema]*resolution{}}).compile(w, r, "")
}

type resolver struct {
	// building holds plans under construction, so recursive types resolve.
	building map[[2]*schema]*resolution
}

func (rs *resolver) compile(w, r *schema, path string) (resolution, error) {
	key := [2]*schema{w, r}
	if p, ok := rs.building[key]; ok {
		return func(v any) (any, error) { return (*p)(v) }, nil
	}
	var plan resolution
	rs.building[key] = &plan
	p, err := rs.compileNew(w, r, path)
	if err != nil {
		delete(rs.building, key)
		return nil, err
	}
	plan = p
	return p, nil
}

func (rs *resolver) compileNew(w, r *schema, path string) (resolution, error) {
	at := func(format string, args ...any) error {
		where := path
		if where == "" {
			where = "the record"
		}
		return fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...))
	}
	switch {
	case r.typ == "union" && w.typ == "union":
		// Each writer branch reads as the first reader branch it resolves to.
		plans := map[string]func(any) (any, error){}
		matched := 0
		for _, wb := range w.branches {
			wname := branchName(wb)
			idx, p := rs.firstMatch(wb, r.branches, path)
			if p == nil {
				plans[wname] = func(any) (any, error) {
					return nil, fmt.Errorf("%w: %s holds a %s, which the reader's union has no branch for", ErrUnresolvable, path, wname)
				}
				continue
			}
			matched++
			plans[wname] = wrapIn(r.branches[idx], p)
		}
		if matched == 0 {
			return nil, at("no branch of the writer's union %s matches the reader's %s", describe(w), describe(r))
		}
		return func(v any) (any, error) {
			if v == nil {
				if p, ok := plans["null"]; ok {
					return p(nil)
				}
				return nil, fmt.Errorf("%w: %s is null, which the reader's union has no branch for", ErrUnresolvable, path)
			}
			name, inner, ok := unionMember(v)
			if !ok {
				return nil, fmt.Errorf("%w: %s: malformed union value %T", ErrUnresolvable, path, v)
			}
			p, ok := plans[name]
			if !ok {
				return nil, fmt.Errorf("%w: %s: unknown union branch %q", ErrUnresolvable, path, name)
			}
			return p(inner)
		}, nil

	case r.typ == "union":
		idx, p := rs.firstMatch(w, r.branches, path)
		if p == nil {
			return nil, at("a writer %s matches no branch of the reader's %s", describe(w), describe(r))
		}
		return wrapIn(r.branches[idx], p), nil

	case w.typ == "union":
		plans := map[string]resolution{}
		for _, wb := range w.branches {
			if p, err := rs.compile(wb, r, path); err == nil {
				plans[branchName(wb)] = p
			}
		}
		if len(plans) == 0 {
			return nil, at("no branch of the writer's union %s matches the reader's %s", describe(w), describe(r))
		}
		return func(v any) (any, error) {
			name, inner := "null", any(nil)
			if v != nil {
				var ok bool
				if name, inner, ok = unionMember(v); !ok {
					return nil, fmt.Errorf("%w: %s: malformed union value %T", ErrUnresolvable, path, v)
				}
			}
			p, ok := plans[name]
			if !ok {
				return nil, fmt.Errorf("%w: %s holds a %s, which the reader's %s cannot hold", ErrUnresolvable, path, name, describe(r))
			}
			return p(inner)
		}, nil
	}

	if primitiveTypes[w.typ] && primitiveTypes[r.typ] {
		p, ok := promotion(w, r)
		if !ok {
			return nil, at("a writer %s cannot be read as %s", describe(w), describe(r))
		}
		return p, nil
	}
	if w.typ != r.typ {
		return nil, at("a writer %s cannot be read as %s", describe(w), describe(r))
	}
	switch r.typ {
	case "array":
		items, err := rs.compile(w.items, r.items, path+"[]")
		if err != nil {
			return nil, err
		}
		return func(v any) (any, error) {
			arr, ok := v.([]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: %T is not an array", ErrUnresolvable, path, v)
			}
			for i := range arr {
				x, err := items(arr[i])
				if err != nil {
					return nil, err
				}
				arr[i] = x
			}
			return arr, nil
		}, nil
	case "map":
		values, err := rs.compile(w.values, r.values, path+"{}")
		if err != nil {
			return nil, err
		}
		return func(v any) (any, error) {
			m, ok := v.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("%w: %s: %T is not a map", ErrUnresolvable, path, v)
			}
			for k := range m {
				x, err := values(m[k])
				if err != nil {
					return nil, err
				}
				m[k] = x
			}
			return m, nil
		}, nil
	case "fixed":
		if !namesMatch(w, r) || w.size != r.size {
			return nil, at("fixed %s (size %d) cannot be read as fixed %s (size %d)", w.name, w.size, r.name, r.size)
		}
		return identity, nil
	case "enum":
		if !namesMatch(w, r) {
			return nil, at("enum %s cannot be read as enum %s", w.name, r.name)
		}
		return func(v any) (any, error) {
			s, _ := v.(string)
			if slices.Contains(r.symbols, s) {
				return s, nil
			}
			if r.enumDefault != nil {
				return *r.enumDefault, nil
			}
			return nil, fmt.Errorf("%w: %s: symbol %q is not in the reader's enum %s and it has no default", ErrUnresolvable, path, s, r.name)
		}, nil
	case "record":
		return rs.compileRecord(w, r, path)
	}
	return nil, at("unsupported reader type %s", r.typ)
}

func (rs *resolver) compileRecord(w, r *schema, path string) (resolution, error) {
	if !namesMatch(w, r) {
		return nil, fmt.Errorf("%s: record %s cannot be read as record %s (no alias)", orRecord(path), w.name, r.name)
	}
	type fieldPlan struct {
		reader, writer string
		plan           resolution
		def            any // native default when the writer lacks the field
	}
	var plans []fieldPlan
	for _, rf := range r.fields {
		fpath := rf.name
		if path != "" {
			fpath = path + "." + rf.name
		}
		var wf *schemaField
		for _, cand := range w.fields {
			if cand.name == rf.name || slices.Contains(rf.aliases, cand.name) {
				wf = cand
				break
			}
		}
		if wf == nil {
			if !rf.hasDef {
				return nil, fmt.Errorf("%s: the writer has no field %q and the reader's has no default", orRecord(path), rf.name)
			}
			def, err := defaultValue(rf.typ, rf.def)
			if err != nil {
				return nil, fmt.Errorf("%s: default: %w", fpath, err)
			}
			plans = append(plans, fieldPlan{reader: rf.name, def: def})
			continue
		}
		p, err := rs.compile(wf.typ, rf.typ, fpath)
		if err != nil {
			return nil, err
		}
		plans = append(plans, fieldPlan{reader: rf.name, writer: wf.name, plan: p})
	}
	return func(v any) (any, error) {
		in, ok := v.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%w: %s: %T is not a record", ErrUnresolvable, orRecord(path), v)
		}
		out := make(map[string]any, len(plans))
		for _, fp := range plans {
			if fp.plan == nil {
				out[fp.reader] = cloneDefault(fp.def)
				continue
			}
			x, err := fp.plan(in[fp.writer])
			if err != nil {
				return nil, err
			}
			out[fp.reader] = x
		}
		return out, nil
	}, nil
}

// firstMatch finds the first reader branch a writer schema resolves to.
func (rs *resolver) firstMatch(w *schema, branches []*schema, path string) (int, resolution) {
	// An exact kind match is preferred over a promotion, as the spec's
	// "first schema that matches" is read by Java and Python: a writer long
	// picks a reader long before a reader double.
	for pass := 0; pass < 2; pass++ {
		for i, b := range branches {
			if b.typ == "union" {
				continue
			}
			if pass == 0 && b.typ != w.typ {
				continue
			}
			if p, err := rs.compile(w, b, path); err == nil {
				return i, p
			}
		}
	}
	return -1, nil
}

// wrapIn puts a resolved value into the native form of a union branch.
func wrapIn(branch *schema, p resolution) resolution {
	if branch.typ == "null" {
		return func(any) (any, error) { return nil, nil }
	}
	name := branchName(branch)
	return func(v any) (any, error) {
		x, err := p(v)
		if err != nil {
			return nil, err
		}
		return map[string]any{name: x}, nil
	}
}

// promotion reads one primitive as another, or reports that it cannot.
func promotion(w, r *schema) (resolution, bool) {
	wTime, rTime := w.logical == "timestamp-millis", r.logical == "timestamp-millis"
	if w.typ == r.typ {
		switch {
		case w.typ == "long" && rTime && !wTime:
			return func(v any) (any, error) {
				n, _ := v.(int64)
				return time.UnixMilli(n).UTC(), nil
			}, true
		case w.typ == "long" && wTime && !rTime:
			return func(v any) (any, error) {
				t, _ := v.(time.Time)
				return t.UnixMilli(), nil
			}, true
		}
		return identity, true
	}
	toFloat := func(v any) float64 {
		switch n := v.(type) {
		case int32:
			return float64(n)
		case int64:
			return float64(n)
		case float32:
			return float64(n)
		case time.Time:
			return float64(n.UnixMilli())
		}
		return 0
	}
	switch w.typ + ">" + r.typ {
	case "int>long":
		if rTime {
			return func(v any) (any, error) { n, _ := v.(int32); return time.UnixMilli(int64(n)).UTC(), nil }, true
		}
		return func(v any) (any, error) { n, _ := v.(int32); return int64(n), nil }, true
	case "int>float", "long>float":
		return func(v any) (any, error) { return float32(toFloat(v)), nil }, true
	case "int>double", "long>double", "float>double":
		return func(v any) (any, error) { return toFloat(v), nil }, true
	case "string>bytes":
		return func(v any) (any, error) { s, _ := v.(string); return []byte(s), nil }, true
	case "bytes>string":
		return func(v any) (any, error) { b, _ := v.([]byte); return string(b), nil }, true
	}
	return nil, false
}

func namesMatch(w, r *schema) bool {
	if shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name || shortName(a) == shortName(w.name) {
			return true
		}
	}
	return false
}

// branchName is the key goavro uses for a union member in native form.
func branchName(s *schema) string {
	switch {
	case s.name != "":
		return s.name
	case s.logical != "" && primitiveTypes[s.typ]:
		return s.typ + "." + s.logical
	}
	return s.typ
}

func unionMember(v any) (string, any, bool) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return "", nil, false
	}
	for k, x := range m {
		return k, x, true
	}
	return "", nil, false
}

func describe(s *schema) string {
	switch s.typ {
	case "union":
		names := make([]string, len(s.branches))
		for i, b := range s.branches {
			names[i] = branchName(b)
		}
		return fmt.Sprintf("union %v", names)
	case "record", "enum", "fixed":
		return s.typ + " " + s.name
	}
	if s.logical != "" {
		return s.typ + " (" + s.logical + ")"
	}
	return s.typ
}

func orRecord(path string) string {
	if path == "" {
		return "the record"
	}
	return path
}

// defaultValue turns a field default, as JSON in the schema, into the
// native form goavro would have decoded with the reader schema.
func defaultValue(s *schema, def any) (any, error) {
	switch s.typ {
	case "union": // a union's default is of its first branch
		if len(s.branches) == 0 {
			return nil, errors.New("empty union")
		}
		first := s.branches[0]
		if first.typ == "null" {
			return nil, nil
		}
		v, err := defaultValue(first, def)
		if err != nil {
			return nil, err
		}
		return map[string]any{branchName(first): v}, nil
	case "null":
		return nil, nil
	case "boolean":
		b, ok := def.(bool)
		if !ok {
			return nil, fmt.Errorf("%v is not a boolean", def)
		}
		return b, nil
	case "int", "long", "float", "double":
		n, ok := def.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%v is not a number", def)
		}
		switch s.typ {
		case "int":
			i, err := n.Int64()
			return int32(i), err
		case "long":
			i, err := n.Int64()
			if s.logical == "timestamp-millis" {
				return time.UnixMilli(i).UTC(), err
			}
			return i, err
		case "float":
			f, err := n.Float64()
			return float32(f), err
		}
		return n.Float64()
	case "string", "enum":
		str, ok := def.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string", def)
		}
		return str, nil
	case "bytes", "fixed":
		str, ok := def.(string)
		if !ok {
			return nil, fmt.Errorf("%v is not a string of bytes", def)
		}
		// JSON defaults of bytes map code points 0-255 to bytes.
		out := make([]byte, 0, len(str))
		for _, r := range str {
			out = append(out, byte(r))
		}
		return out, nil
	case "array":
		arr, ok := def.([]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an array", def)
		}
		out := make([]any, len(arr))
		for i, x := range arr {
			v, err := defaultValue(s.items, x)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case "map":
		m, ok := def.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", def)
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			v, err := defaultValue(s.values, x)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	case "record":
		m, ok := def.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%v is not an object", def)
		}
		out := make(map[string]any, len(s.fields))
		for _, f := range s.fields {
			x, ok := m[f.name]
			if !ok {
				if !f.hasDef {
					return nil, fmt.Errorf("default of %s lacks field %s", s.name, f.name)
				}
				x = f.def
			}
			v, err := defaultValue(f.typ, x)
			if err != nil {
				return nil, err
			}
			out[f.name] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("no default for type %s", s.typ)
}

// cloneDefault copies a default so that records never share mutable values.
func cloneDefault(v any) any {
	switch t := v.(type) {
	case []any:
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = cloneDefault(x)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, x := range t {
			out[k] = cloneDefault(x)
		}
		return out
	case []byte:
		return append([]byte(nil), t...)
	}
	return v
}
