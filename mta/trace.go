package mta

import (
	"crypto/rand"
	"crypto/tls"
	"net/netip"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The Received field a listener puts on top of each message it accepts
// (RFC 5321 §4.4), below the Return-Path the Deliverer adds:
//
//	Received: from client.example.net ([192.0.2.1])
//		(authenticated as alice@example.com)
//		by mx.example.com (mailsys) with ESMTPSA id 4MZ2K7QXJ3B5T6WA
//		for <bob@example.com>; Mon, 02 Jan 2006 15:04:05 -0700
//
// "from" names the client as it greeted (HELO or EHLO) and, as
// TCP-info, the address it connected from as an address literal
// ([IPv6:...] for IPv6). The comment on the user is there on a
// submission listener only. "with" is the protocol as RFC 3848 and
// RFC 6531 §3.7.3 register it: ESMTP, or UTF8SMTP for a transaction with
// the SMTPUTF8 parameter, then S over TLS and A once authenticated; SMTP
// for a client that greeted with HELO, used neither TLS nor AUTH, and did
// not ask for SMTPUTF8. "id" is the message's id (newMessageID), which the
// listener also logs; "for" is there when the message has one recipient.

// newMessageID returns a new id for a message the listener receives: 16
// characters of base32, 80 random bits, so unique without coordination
// between listeners, processes and restarts.
func newMessageID() string { return rand.Text()[:16] }

// trace returns the Received field of a message with the given id,
// received now.
func (s *inboundSession) trace(id string, now time.Time) string {
	var b strings.Builder
	b.WriteString("Received: from ")
	b.WriteString(heloName(s.helo()))
	if info := tcpInfo(s.ip); info != "" {
		b.WriteString(" (" + info + ")")
	}
	if s.user != nil {
		b.WriteString("\r\n\t(authenticated as " + s.user.Address + ")")
	}
	b.WriteString("\r\n\tby " + s.in.cfg.Hostname + " (mailsys) with " + s.protocol() + " id " + id)
	if len(s.to) == 1 {
		b.WriteString("\r\n\tfor <" + s.to[0] + ">; ")
	} else {
		b.WriteString(";\r\n\t")
	}
	b.WriteString(now.Format(time.RFC1123Z))
	b.WriteString("\r\n")
	return b.String()
}

// protocol is the "with" of the Received field (see above).
func (s *inboundSession) protocol() string {
	_, secure := s.conn().(*tls.Conn)
	p := "ESMTP"
	switch {
	case s.utf8:
		p = "UTF8SMTP"
	case !secure && s.user == nil && greetingOf(s.conn()) == greetHELO:
		return "SMTP"
	}
	if secure {
		p += "S"
	}
	if s.user != nil {
		p += "A"
	}
	return p
}

// helo returns the name the client last greeted with.
func (s *inboundSession) helo() string { return s.smtp.Hostname() }

// tcpInfo is the address literal of ip (RFC 5321 §4.1.3), without its
// zone, or "" if there is none (not a TCP connection).
func tcpInfo(ip netip.Addr) string {
	switch {
	case !ip.IsValid():
		return ""
	case ip.Is4():
		return "[" + ip.String() + "]"
	}
	return "[IPv6:" + ip.WithZone("").String() + "]"
}

// maxHeloName bounds the client's name in the Received field: a domain
// name is at most 255 octets.
const maxHeloName = 255

// heloName is the client's greeting name fit for the Received field: each
// byte that cannot be part of a domain name or an address literal (white
// space, parentheses, semicolons, control characters, invalid UTF-8)
// becomes "?", so that what the client typed cannot end or change the
// field, and it is cut to maxHeloName bytes. Non-ASCII letters and digits
// (U-labels, RFC 6531) are kept.
func heloName(name string) string {
	var b strings.Builder
	for _, r := range name {
		ascii := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r < utf8.RuneSelf && strings.ContainsRune(".-_:[]", r)
		if !ascii && (r < utf8.RuneSelf || !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsMark(r)) {
			r = '?' // U+FFFD, invalid UTF-8's, is not a letter either
		}
		if b.Len()+utf8.RuneLen(r) > maxHeloName {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
