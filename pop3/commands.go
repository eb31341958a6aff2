package pop3

import (
	"strconv"
)

// The commands of the TRANSACTION state (RFC 1939, section 5; TOP and
// UIDL from section 7).

func (ss *session) stat(rest string) error {
	if rest != "" {
		return errSyntax
	}
	ss.okf("%d %d", ss.drop.count, ss.drop.size)
	return nil
}

// list answers LIST and LIST n.
func (ss *session) list(rest string) error {
	return ss.listing(rest, func(m *message) string { return strconv.FormatInt(m.size, 10) })
}

// uidl answers UIDL and UIDL n.
func (ss *session) uidl(rest string) error {
	return ss.listing(rest, ss.drop.uidl)
}

// listing answers LIST or UIDL: for one message "+OK n value", for all a
// multi-line reply with a line "n value" for each message not marked
// deleted.
func (ss *session) listing(rest string, value func(*message) string) error {
	d := ss.drop
	args := fields(rest)
	switch len(args) {
	case 0:
	case 1:
		n, m, err := d.get(args[0])
		if err != nil {
			return err
		}
		ss.okf("%d %s", n, value(m))
		return nil
	default:
		return errSyntax
	}
	ss.okf("%d messages (%d octets)", d.count, d.size)
	var buf []byte
	for i := range d.msgs {
		if m := &d.msgs[i]; !m.deleted {
			buf = strconv.AppendInt(buf[:0], int64(i+1), 10)
			buf = append(buf, ' ')
			buf = append(buf, value(m)...)
			buf = append(buf, "\r\n"...)
			ss.w.Write(buf)
		}
	}
	ss.w.WriteString(".\r\n")
	return nil
}

func (ss *session) retr(rest string) error {
	args := fields(rest)
	if len(args) != 1 {
		return errSyntax
	}
	n, m, err := ss.drop.get(args[0])
	if err != nil {
		return err
	}
	return ss.sendBody(n, m, -1)
}

// top answers TOP n lines: the header, the blank line and the first lines
// of the body.
func (ss *session) top(rest string) error {
	args := fields(rest)
	if len(args) != 2 {
		return errSyntax
	}
	lines, ok := parseNumber(args[1])
	if !ok {
		return errSyntax
	}
	n, m, err := ss.drop.get(args[0])
	if err != nil {
		return err
	}
	return ss.sendBody(n, m, lines)
}

func (ss *session) dele(rest string) error {
	args := fields(rest)
	if len(args) != 1 {
		return errSyntax
	}
	n, m, err := ss.drop.get(args[0])
	if err != nil {
		return err
	}
	ss.drop.mark(m)
	ss.okf("Message %d deleted", n)
	return nil
}

func (ss *session) noop(rest string) error {
	if rest != "" {
		return errSyntax
	}
	ss.okf("")
	return nil
}

func (ss *session) rset(rest string) error {
	if rest != "" {
		return errSyntax
	}
	ss.drop.reset()
	ss.okf("Maildrop has %d messages (%d octets)", ss.drop.count, ss.drop.size)
	return nil
}
