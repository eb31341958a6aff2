package main

// Checks of the structure of FETCH items the grammar leaves to the
// reader: sections, dates, ENVELOPE and BODYSTRUCTURE.

import (
	"errors"
	"fmt"
	"strings"
)

// checkSection checks section-spec: [part *("." part)] ["." text], text
// being HEADER, HEADER.FIELDS[.NOT] (list), TEXT, or MIME after a part.
func checkSection(sec string, binary bool) error {
	if sec == "" {
		return nil
	}
	rest := sec
	parts := 0
	for rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if rest[0] == '0' {
			return errors.New("part number 0")
		}
		parts++
		rest = rest[i:]
		if rest == "" {
			return nil
		}
		if rest[0] != '.' {
			return fmt.Errorf("%q after a part number", rest)
		}
		rest = rest[1:]
	}
	if binary {
		return errors.New("a BINARY section takes part numbers only")
	}
	switch {
	case rest == "HEADER" || rest == "TEXT":
	case rest == "MIME" && parts > 0:
	case strings.HasPrefix(rest, "HEADER.FIELDS (") || strings.HasPrefix(rest, "HEADER.FIELDS.NOT ("):
		if !strings.HasSuffix(rest, ")") {
			return errors.New("header list not closed")
		}
	default:
		return fmt.Errorf("%q", rest)
	}
	return nil
}

var months = []string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// checkDateTime checks date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", the day
// being two digits or SP and a digit.
func checkDateTime(s string) error {
	if len(s) != 26 {
		return fmt.Errorf("%d characters, want 26", len(s))
	}
	digits := func(t string) bool {
		for i := range len(t) {
			if t[i] < '0' || t[i] > '9' {
				return false
			}
		}
		return true
	}
	day := s[0:2]
	if !(digits(day) || day[0] == ' ' && digits(day[1:])) || s[2] != '-' || s[6] != '-' || s[11] != ' ' || s[14] != ':' || s[17] != ':' || s[20] != ' ' {
		return errors.New("not dd-Mon-yyyy hh:mm:ss +zzzz")
	}
	found := false
	for _, m := range months {
		found = found || s[3:6] == m
	}
	if !found {
		return fmt.Errorf("month %q", s[3:6])
	}
	if !digits(s[7:11]) || !digits(s[12:14]) || !digits(s[15:17]) || !digits(s[18:20]) || (s[21] != '+' && s[21] != '-') || !digits(s[22:26]) {
		return errors.New("not dd-Mon-yyyy hh:mm:ss +zzzz")
	}
	return nil
}

func isNString(v value) bool { return v.kind == vString || v.kind == vNil }

// checkEnvelope checks the ten fields of an ENVELOPE.
func checkEnvelope(v value) error {
	if v.kind != vList || len(v.list) != 10 {
		return errors.New("not a list of 10 fields")
	}
	names := []string{"date", "subject", "from", "sender", "reply-to", "to", "cc", "bcc", "in-reply-to", "message-id"}
	for i, f := range v.list {
		if i >= 2 && i <= 7 {
			if f.kind == vNil {
				continue
			}
			if f.kind != vList || len(f.list) == 0 {
				return fmt.Errorf("%s is neither NIL nor a list of addresses", names[i])
			}
			for _, a := range f.list {
				if a.kind != vList || len(a.list) != 4 || !isNString(a.list[0]) || !isNString(a.list[1]) || !isNString(a.list[2]) || !isNString(a.list[3]) {
					return fmt.Errorf("%s has an address that is not 4 nstrings", names[i])
				}
			}
			continue
		}
		if !isNString(f) {
			return fmt.Errorf("%s is not an nstring", names[i])
		}
	}
	return nil
}

// envelopeMessageID returns an ENVELOPE's message-id.
func envelopeMessageID(v *value) string {
	if v == nil || v.kind != vList || len(v.list) != 10 {
		return ""
	}
	return v.list[9].s
}

// checkBody checks a BODY or BODYSTRUCTURE: body-type-1part or
// body-type-mpart, with their extension data.
func checkBody(v value, depth int) error {
	if depth > maxDepth {
		return errors.New("nested too deep")
	}
	if v.kind != vList || len(v.list) == 0 {
		return errors.New("not a non-empty list")
	}
	l := v.list
	if l[0].kind == vList { // multipart
		i := 0
		for i < len(l) && l[i].kind == vList {
			if err := checkBody(l[i], depth+1); err != nil {
				return err
			}
			i++
		}
		if i >= len(l) || l[i].kind != vString {
			return errors.New("multipart without a subtype string")
		}
		i++
		if i < len(l) {
			if err := checkParams(l[i]); err != nil {
				return fmt.Errorf("multipart parameters: %v", err)
			}
			i++
		}
		return checkBodyExt(l[i:])
	}
	if len(l) < 7 {
		return fmt.Errorf("a part of %d fields, want at least 7", len(l))
	}
	if l[0].kind != vString || l[1].kind != vString {
		return errors.New("type or subtype is not a string")
	}
	if err := checkParams(l[2]); err != nil {
		return fmt.Errorf("parameters: %v", err)
	}
	if !isNString(l[3]) || !isNString(l[4]) {
		return errors.New("id or description is not an nstring")
	}
	if l[5].kind != vString {
		return errors.New("encoding is not a string")
	}
	if l[6].kind != vNumber {
		return errors.New("size is not a number")
	}
	i := 7
	typ, sub := strings.ToUpper(l[0].s), strings.ToUpper(l[1].s)
	switch {
	case typ == "MESSAGE" && (sub == "RFC822" || sub == "GLOBAL"):
		if len(l) < 10 {
			return errors.New("message/rfc822 without envelope, body and lines")
		}
		if err := checkEnvelope(l[7]); err != nil {
			return fmt.Errorf("message/rfc822 envelope: %v", err)
		}
		if err := checkBody(l[8], depth+1); err != nil {
			return fmt.Errorf("message/rfc822 body: %v", err)
		}
		if l[9].kind != vNumber {
			return errors.New("message/rfc822 lines is not a number")
		}
		i = 10
	case typ == "TEXT":
		if len(l) < 8 || l[7].kind != vNumber {
			return errors.New("text part without a line count")
		}
		i = 8
	}
	if i < len(l) {
		if !isNString(l[i]) {
			return errors.New("MD5 is not an nstring")
		}
		i++
	}
	return checkBodyExt(l[i:])
}

// checkParams checks body-fld-param: NIL or string pairs.
func checkParams(v value) error {
	if v.kind == vNil {
		return nil
	}
	if v.kind != vList || len(v.list) == 0 || len(v.list)%2 != 0 {
		return errors.New("neither NIL nor a list of string pairs")
	}
	for _, s := range v.list {
		if s.kind != vString {
			return errors.New("a parameter that is not a string")
		}
	}
	return nil
}

// checkBodyExt checks disposition, language, location and what follows.
func checkBodyExt(l []value) error {
	if len(l) > 0 {
		d := l[0]
		if d.kind != vNil && (d.kind != vList || len(d.list) != 2 || d.list[0].kind != vString || checkParams(d.list[1]) != nil) {
			return errors.New("disposition is neither NIL nor (string params)")
		}
	}
	if len(l) > 1 {
		g := l[1]
		if !isNString(g) {
			if g.kind != vList || len(g.list) == 0 {
				return errors.New("language is neither an nstring nor a list of strings")
			}
			for _, s := range g.list {
				if s.kind != vString {
					return errors.New("language list holds a non-string")
				}
			}
		}
	}
	if len(l) > 2 && !isNString(l[2]) {
		return errors.New("location is not an nstring")
	}
	return nil
}

// bodyIsSinglePart returns a single-part BODYSTRUCTURE's size.
func bodyIsSinglePart(v *value) (uint64, bool) {
	if v == nil || v.kind != vList || len(v.list) < 7 || v.list[0].kind == vList || v.list[6].kind != vNumber {
		return 0, false
	}
	return v.list[6].n, true
}
