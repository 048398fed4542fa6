package transforms

import (
	"encoding/json"
	"fmt"
	"strings"
)

// avroKind is an Avro type's kind.
type avroKind uint8

const (
	kindNull avroKind = iota
	kindBoolean
	kindInt
	kindLong
	kindFloat
	kindDouble
	kindBytes
	kindString
	kindRecord
	kindEnum
	kindArray
	kindMap
	kindFixed
	kindUnion
)

var primitiveKinds = map[string]avroKind{
	"null": kindNull, "boolean": kindBoolean, "int": kindInt, "long": kindLong,
	"float": kindFloat, "double": kindDouble, "bytes": kindBytes, "string": kindString,
}

// Logical types goavro implements; others are read as their base type, as
// goavro does.
var logicalTypes = map[string]avroKind{
	"timestamp-millis": kindLong, "timestamp-micros": kindLong, "time-micros": kindLong,
	"time-millis": kindInt, "date": kindInt,
}

// avroType is a parsed schema node: the guide for turning decoded JSON into
// goavro's native form. Named types are shared, so the graph may have
// cycles (a record that contains itself through a union or array).
type avroType struct {
	kind    avroKind
	logical string // timestamp-millis, ..., decimal; "" when none
	// name is the full name of a named type, and for every type the key
	// goavro expects when it is a union's branch ("long",
	// "long.timestamp-millis", "bytes.decimal", "com.example.Play").
	name       string
	items      *avroType   // array
	values     *avroType   // map
	fields     []avroField // record, in schema order
	symbols    []string    // enum
	symbolSet  map[string]struct{}
	size       int         // fixed
	precision  int         // decimal
	scale      int         // decimal
	branches   []*avroType // union
	hasNull    bool        // union with a null branch
	unionNames string      // union: branch descriptions joined, for errors
}

type avroField struct {
	name       string
	typ        *avroType
	hasDefault bool
}

// optional says a missing field may be read as null.
func (t *avroType) optional() bool {
	return t.kind == kindNull || t.kind == kindUnion && t.hasNull
}

// String describes the type in errors: "long", "long (timestamp-millis)",
// "record com.example.Play", "null or long".
func (t *avroType) String() string {
	switch t.kind {
	case kindRecord:
		return "record " + t.name
	case kindEnum:
		return "enum " + t.name
	case kindFixed:
		if t.logical == "decimal" {
			return fmt.Sprintf("decimal(%d,%d)", t.precision, t.scale)
		}
		return fmt.Sprintf("fixed %s (%d bytes)", t.name, t.size)
	case kindArray:
		return "array"
	case kindMap:
		return "map"
	case kindUnion:
		return t.unionNames
	}
	base := kindNames[t.kind]
	switch t.logical {
	case "":
		return base
	case "decimal":
		return fmt.Sprintf("decimal(%d,%d)", t.precision, t.scale)
	}
	return base + " (" + t.logical + ")"
}

var kindNames = [...]string{
	kindNull: "null", kindBoolean: "boolean", kindInt: "int", kindLong: "long",
	kindFloat: "float", kindDouble: "double", kindBytes: "bytes", kindString: "string",
}

// parseSchema parses Avro schema text with goavro's name rules. The text
// has been accepted by goavro.NewCodec first; the checks here only keep a
// malformed schema from panicking.
func parseSchema(text string) (*avroType, error) {
	var s any
	if err := json.Unmarshal([]byte(text), &s); err != nil {
		return nil, err
	}
	p := schemaParser{named: map[string]*avroType{}}
	return p.parse(s, "")
}

type schemaParser struct {
	named map[string]*avroType // full name → type
}

func (p *schemaParser) parse(s any, ns string) (*avroType, error) {
	switch s := s.(type) {
	case string:
		return p.reference(s, ns)
	case []any:
		return p.union(s, ns)
	case map[string]any:
		return p.object(s, ns)
	}
	return nil, fmt.Errorf("schema of type %T", s)
}

// reference resolves a type name: a primitive, or a named type by its name
// as written, then within the enclosing namespace (goavro's order).
func (p *schemaParser) reference(name, ns string) (*avroType, error) {
	if k, ok := primitiveKinds[name]; ok {
		return &avroType{kind: k, name: name}, nil
	}
	if t, ok := p.named[name]; ok {
		return t, nil
	}
	if ns != "" {
		if t, ok := p.named[ns+"."+name]; ok {
			return t, nil
		}
	}
	return nil, fmt.Errorf("unknown type %q", name)
}

func (p *schemaParser) union(s []any, ns string) (*avroType, error) {
	t := &avroType{kind: kindUnion}
	names := make([]string, 0, len(s))
	for _, b := range s {
		bt, err := p.parse(b, ns)
		if err != nil {
			return nil, err
		}
		if bt.kind == kindUnion {
			return nil, fmt.Errorf("union inside a union")
		}
		t.hasNull = t.hasNull || bt.kind == kindNull
		t.branches = append(t.branches, bt)
		names = append(names, bt.String())
	}
	t.unionNames = strings.Join(names, " or ")
	return t, nil
}

func (p *schemaParser) object(m map[string]any, ns string) (*avroType, error) {
	switch typ := m["type"].(type) {
	case map[string]any:
		return p.object(typ, ns)
	case []any:
		return p.union(typ, ns)
	case string:
		lt, _ := m["logicalType"].(string)
		switch typ {
		case "record":
			return p.record(m, ns)
		case "enum":
			return p.enum(m, ns)
		case "fixed":
			return p.fixed(m, ns, lt)
		case "array":
			items, err := p.parse(m["items"], ns)
			if err != nil {
				return nil, fmt.Errorf("array items: %w", err)
			}
			return &avroType{kind: kindArray, name: "array", items: items}, nil
		case "map":
			values, err := p.parse(m["values"], ns)
			if err != nil {
				return nil, fmt.Errorf("map values: %w", err)
			}
			return &avroType{kind: kindMap, name: "map", values: values}, nil
		}
		k, primitive := primitiveKinds[typ]
		switch {
		case !primitive || lt == "":
			return p.reference(typ, ns)
		case logicalTypes[lt] == k && k != kindNull:
			return &avroType{kind: k, logical: lt, name: typ + "." + lt}, nil
		case k == kindBytes && lt == "decimal":
			t := &avroType{kind: kindBytes, logical: lt, name: "bytes.decimal"}
			if _, named := m["name"]; named {
				t.name = fullName(m, ns)
				p.named[t.name] = t
			}
			return t, t.decimal(m)
		case k == kindString && lt == "validated-string":
			t := &avroType{kind: kindString, name: "string.validated-string"}
			if _, named := m["name"]; named {
				t.name = fullName(m, ns)
				p.named[t.name] = t
			}
			return t, nil
		}
		return &avroType{kind: k, name: typ}, nil // an unknown logical type: its base
	}
	return nil, fmt.Errorf("schema without a type: %v", m)
}

func (p *schemaParser) record(m map[string]any, ns string) (*avroType, error) {
	t := &avroType{kind: kindRecord, name: fullName(m, ns)}
	p.named[t.name] = t // before the fields: they may refer to it
	fields, _ := m["fields"].([]any)
	for i, f := range fields {
		fm, ok := f.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("record %s field %d is not an object", t.name, i+1)
		}
		name, _ := fm["name"].(string)
		ft, err := p.parse(fm["type"], namespaceOf(t.name))
		if err != nil {
			return nil, fmt.Errorf("record %s field %q: %w", t.name, name, err)
		}
		_, hasDefault := fm["default"]
		t.fields = append(t.fields, avroField{name: name, typ: ft, hasDefault: hasDefault})
	}
	return t, nil
}

func (p *schemaParser) enum(m map[string]any, ns string) (*avroType, error) {
	t := &avroType{kind: kindEnum, name: fullName(m, ns), symbolSet: map[string]struct{}{}}
	symbols, _ := m["symbols"].([]any)
	for _, s := range symbols {
		sym, _ := s.(string)
		t.symbols = append(t.symbols, sym)
		t.symbolSet[sym] = struct{}{}
	}
	p.named[t.name] = t
	return t, nil
}

func (p *schemaParser) fixed(m map[string]any, ns, lt string) (*avroType, error) {
	if _, named := m["name"]; !named && lt == "decimal" {
		m["name"] = "fixed.decimal"
	}
	t := &avroType{kind: kindFixed, name: fullName(m, ns)}
	size, _ := m["size"].(float64)
	t.size = int(size)
	p.named[t.name] = t
	if lt == "decimal" {
		t.logical = lt
		return t, t.decimal(m)
	}
	return t, nil
}

func (t *avroType) decimal(m map[string]any) error {
	precision, _ := m["precision"].(float64)
	scale, _ := m["scale"].(float64)
	t.precision, t.scale = int(precision), int(scale)
	if t.precision < 1 || t.scale < 0 || t.scale > t.precision {
		return fmt.Errorf("decimal with precision %d and scale %d", t.precision, t.scale)
	}
	return nil
}

// fullName is a named type's full name by the Avro rules as goavro applies
// them: a dotted name is full; otherwise the type's namespace, else the
// enclosing one, prefixes it.
func fullName(m map[string]any, enclosing string) string {
	name, _ := m["name"].(string)
	if strings.Contains(name, ".") {
		return name
	}
	if ns, _ := m["namespace"].(string); ns != "" {
		return ns + "." + name
	}
	if enclosing != "" {
		return enclosing + "." + name
	}
	return name
}

func namespaceOf(full string) string {
	if i := strings.LastIndexByte(full, '.'); i >= 0 {
		return full[:i]
	}
	return ""
}
