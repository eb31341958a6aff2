package main

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// The configuration file is decoded key by key into settings: each
// setting holds a pointer to the variable it sets (as a flag does) and
// converts the TOML value itself, with a message of its own when the
// value does not fit. A key the file does not have leaves its variable
// as it was. Decoding key by key, rather than the whole file at once as
// toml.Decode does, lets every wrong value and every unknown key be
// reported together; toml still does the parsing and knows the lines.

// str sets a string.
type str struct{ p *string }

func (s str) UnmarshalTOML(v any) error {
	x, ok := v.(string)
	if !ok {
		return wrongType("a string", v)
	}
	*s.p = x
	return nil
}

// boolean sets a bool.
type boolean struct{ p *bool }

func (b boolean) UnmarshalTOML(v any) error {
	x, ok := v.(bool)
	if !ok {
		return wrongType("true or false", v)
	}
	*b.p = x
	return nil
}

// integer sets an integer of any size, refusing one that does not fit.
type integer[T int | uint8 | uint32] struct{ p *T }

func (n integer[T]) UnmarshalTOML(v any) error {
	x, ok := v.(int64)
	if !ok {
		return wrongType("an integer", v)
	}
	return setInt(n.p, x)
}

func setInt[T int | int64 | uint8 | uint32 | uint64](p *T, x int64) error {
	t := T(x)
	if int64(t) != x || (t > 0) != (x > 0) {
		return fmt.Errorf("%d is out of range", x)
	}
	*p = t
	return nil
}

// float sets a float64; an integer is taken too.
type float struct{ p *float64 }

func (f float) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case float64:
		*f.p = x
	case int64:
		*f.p = float64(x)
	default:
		return wrongType("a number", v)
	}
	return nil
}

// size sets a number of bytes, given as an integer or as a string with
// a unit: "64MiB". It is stored in units of unit bytes (zero means 1),
// and must be a whole number of them.
type size[T int | int64 | uint32 | uint64] struct {
	p    *T
	unit int64
}

func (s size[T]) UnmarshalTOML(v any) error {
	var n int64
	switch x := v.(type) {
	case int64:
		n = x
	case string:
		var err error
		if n, err = parseSize(x); err != nil {
			return err
		}
	default:
		return wrongType(`a size: bytes, or a string such as "64MiB"`, v)
	}
	if s.unit > 1 {
		if n%s.unit != 0 {
			return fmt.Errorf("%d bytes is not a whole number of %d-byte units", n, s.unit)
		}
		n /= s.unit
	}
	return setInt(s.p, n)
}

// sizeUnits are the units a size may be given in.
var sizeUnits = []struct {
	name  string
	bytes int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}}

// parseSize reads a size such as "64MiB", "1 GiB" or "512B".
func parseSize(s string) (int64, error) {
	for _, u := range sizeUnits {
		num, ok := strings.CutSuffix(s, u.name)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/u.bytes {
			break
		}
		return n * u.bytes, nil
	}
	return 0, fmt.Errorf(`%q is not a size: want bytes, or a whole number with a unit (B, KiB, MiB, GiB, TiB) such as "64MiB"`, s)
}

// duration sets a time.Duration, given as a string such as "5m" or
// "1h30m". It may not be negative.
type duration struct{ p *time.Duration }

func (d duration) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wrongType(`a duration, a string such as "5m"`, v)
	}
	x, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`%q is not a duration: want one such as "30s", "5m" or "1h30m"`, s)
	}
	if x < 0 {
		return fmt.Errorf("%q: negative", s)
	}
	*d.p = x
	return nil
}

// strs sets a list of strings.
type strs struct{ p *[]string }

func (l strs) UnmarshalTOML(v any) error {
	a, ok := v.([]any)
	if !ok {
		return wrongType("an array of strings", v)
	}
	out := make([]string, len(a))
	for i, x := range a {
		if out[i], ok = x.(string); !ok {
			return fmt.Errorf("element %d: %w", i+1, wrongType("a string", x))
		}
	}
	*l.p = out
	return nil
}

// networks sets a list of networks: "192.0.2.0/24", "2001:db8::/32", or
// a single address.
type networks struct{ p *[]netip.Prefix }

func (n networks) UnmarshalTOML(v any) error {
	var list []string
	if err := (strs{&list}).UnmarshalTOML(v); err != nil {
		return err
	}
	out := make([]netip.Prefix, len(list))
	var errs []error
	for i, s := range list {
		if a, err := netip.ParseAddr(s); err == nil {
			out[i] = netip.PrefixFrom(a, a.BitLen())
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%q is not a network (such as 192.0.2.0/24) or an address", s))
		}
		out[i] = p
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	*n.p = out
	return nil
}

// tables are the keys of an array of tables, such as [[users]]. Elements
// returns the settings of n new elements, replacing those there were:
// pointers to structs whose fields are tagged with their keys, as those
// of a table.
type tables interface{ elements(n int) []any }

// tableArray is an array of tables decoded into a slice of E, each
// element's keys bound by bind.
type tableArray[E any] struct {
	p    *[]E
	bind func(*E) any
}

func (t tableArray[E]) elements(n int) []any {
	*t.p = make([]E, n)
	out := make([]any, n)
	for i := range *t.p {
		out[i] = t.bind(&(*t.p)[i])
	}
	return out
}

// wrongType is the error of a value of the wrong type.
func wrongType(want string, v any) error {
	var got string
	switch x := v.(type) {
	case string:
		got = strconv.Quote(x)
	case int64, float64, bool:
		got = fmt.Sprint(x)
	case map[string]any:
		got = "a table"
	case []map[string]any, []any:
		got = "an array"
	default:
		got = fmt.Sprintf("a %T", v)
	}
	return fmt.Errorf("want %s, not %s", want, got)
}

// decoded is what decodeFile found in a file.
type decoded struct {
	keys     map[string]bool // the keys the file has, without array indices
	refused  map[string]bool // the keys refused, as problems name them
	problems []string        // each naming the file, and the line and the key where it can
}

// decoder decodes a parsed file into settings.
type decoder struct {
	decoded
	file  string
	md    toml.MetaData
	order map[string]int // key (without array indices) → its first place in the file
}

var (
	unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()
	tablesType      = reflect.TypeFor[tables]()
)

// decodeFile parses data, the contents of file, and decodes it into
// settings, a pointer to a struct whose fields are settings, nested
// structs (tables) and tables (arrays of tables), each tagged with its
// key, and returns what it found: every problem at once, a syntax error
// alone.
func decodeFile(file string, data []byte, settings any) decoded {
	d := &decoder{decoded: decoded{keys: map[string]bool{}, refused: map[string]bool{}}, file: file, order: map[string]int{}}
	var top map[string]toml.Primitive
	md, err := toml.Decode(string(data), &top)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			err = fmt.Errorf("%d: %s", pe.Position.Line, pe.Message)
		}
		d.problems = []string{fmt.Sprintf("%s:%v", file, err)}
		return d.decoded
	}
	d.md = md
	for i, k := range md.Keys() {
		if !d.keys[k.String()] {
			d.keys[k.String()], d.order[k.String()] = true, i
		}
	}
	d.table(nil, "", false, top, reflect.ValueOf(settings).Elem())
	return d.decoded
}

// table decodes keys, those of the table at key, into v, a struct of
// settings. name is key as the problems write it, with the indices of
// the arrays of tables it is in, if inArray.
func (d *decoder) table(key toml.Key, name string, inArray bool, keys map[string]toml.Primitive, v reflect.Value) {
	fields := map[string]reflect.Value{}
	for i := range v.NumField() {
		fields[v.Type().Field(i).Tag.Get("toml")] = v.Field(i)
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int {
		return d.order[child(key, a).String()] - d.order[child(key, b).String()]
	})
	for _, k := range names {
		p, subKey, subName := keys[k], child(key, k), toml.Key{k}.String()
		if name != "" {
			subName = name + "." + subName
		}
		f, ok := fields[k]
		switch {
		case !ok:
			d.refuse(p, subName, inArray, errors.New("unknown key"))
		case reflect.PointerTo(f.Type()).Implements(unmarshalerType):
			if err := d.md.PrimitiveDecode(p, f.Addr().Interface()); err != nil {
				d.refuse(p, subName, inArray, err)
			}
		case f.Type().Implements(tablesType):
			var elems []map[string]toml.Primitive
			if !d.is(p, subName, inArray, isTableArray, "an array of tables") || d.md.PrimitiveDecode(p, &elems) != nil {
				break
			}
			for i, e := range f.Interface().(tables).elements(len(elems)) {
				d.table(subKey, fmt.Sprintf("%s[%d]", subName, i+1), true, elems[i], reflect.ValueOf(e).Elem())
			}
		default: // a struct: a table
			var sub map[string]toml.Primitive
			if !d.is(p, subName, inArray, isTable, "a table") || d.md.PrimitiveDecode(p, &sub) != nil {
				break
			}
			d.table(subKey, subName, inArray, sub, f)
		}
	}
}

// child is key's key k, in a slice of its own.
func child(key toml.Key, k string) toml.Key { return append(key[:len(key):len(key)], k) }

// is reports whether p's value passes ok, and refuses it, wanting want,
// if not.
func (d *decoder) is(p toml.Primitive, name string, inArray bool, ok func(any) bool, want string) bool {
	var v any
	if err := d.md.PrimitiveDecode(p, &v); err != nil || !ok(v) {
		d.refuse(p, name, inArray, wrongType(want, v))
		return false
	}
	return true
}

func isTable(v any) bool { _, ok := v.(map[string]any); return ok }

func isTableArray(v any) bool {
	switch a := v.(type) {
	case []map[string]any:
		return true
	case []any:
		return !slices.ContainsFunc(a, func(x any) bool { return !isTable(x) })
	}
	return false
}

// refuse records a problem with the value p of the key written name:
// err. The line is toml's, found by decoding p into a value that fails;
// a key inside an array of tables has none, as toml knows only the line
// of its last element's.
func (d *decoder) refuse(p toml.Primitive, name string, inArray bool, err error) {
	d.refused[name] = true
	var pe toml.ParseError
	if errors.As(err, &pe) {
		err = errors.New(pe.Message)
	} else if errors.As(d.md.PrimitiveDecode(p, failing{}), &pe) {
		pe.Message = err.Error()
	}
	if pe.Position.Line > 0 && !inArray {
		d.problems = append(d.problems, fmt.Sprintf("%s:%d: %s: %v", d.file, pe.Position.Line, name, err))
	} else {
		d.problems = append(d.problems, fmt.Sprintf("%s: %s: %v", d.file, name, err))
	}
}

// failing is a value toml cannot decode into, to learn a key's line from
// the error.
type failing struct{}

func (failing) UnmarshalTOML(any) error { return errors.New("") }
