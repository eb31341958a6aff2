package dsn

import (
	"bytes"
	"time"
)

// textPart returns the part for a person: what happened to each
// recipient, with the remote server's reply, in plain text.
func textPart(r *Report, host string, whole, global bool) part {
	var b bytes.Buffer
	line := func(s string) {
		b.WriteString(cut(s, maxLine))
		b.WriteString("\r\n")
	}
	line("This is the mail system at host " + host + ".")
	line("")
	switch kind(r.Recipients) {
	case Failed:
		line("Your message could not be delivered to one or more of its")
		if whole {
			line("recipients, for the reasons below. The message is attached.")
		} else {
			line("recipients, for the reasons below. Its header is attached.")
		}
	case Delayed:
		line("Your message has not yet been delivered to the recipients below.")
		line("Delivery is still being tried: you need not send it again, and")
		line("you will be told if it cannot be delivered in the end.")
	case Relayed:
		line("Your message was passed on to the systems of the recipients below,")
		line("which send no delivery notifications of their own.")
	default:
		line("Your message was delivered to the recipients below.")
	}
	for _, rc := range r.Recipients {
		line("")
		addr := "<" + clean(rc.Final, global, MaxDiagnostic) + ">: "
		status := " (" + rc.status() + ")"
		switch rc.Action {
		case Failed:
			line(addr + "could not be delivered" + status)
		case Delayed:
			if rc.WillRetryUntil.IsZero() {
				line(addr + "not delivered yet" + status + "; still being tried")
			} else {
				line(addr + "not delivered yet" + status + "; will be tried until " + rc.WillRetryUntil.Format(time.RFC1123Z))
			}
		case Relayed:
			line(addr + "passed on to a system that sends no notifications" + status)
		case Expanded:
			line(addr + "delivered, and passed on to further addresses" + status)
		default:
			line(addr + "delivered" + status)
		}
		diag := clean(rc.Diagnostic, global, MaxDiagnostic)
		mta := clean(rc.RemoteMTA, global, 255)
		switch {
		case diag != "" && mta != "":
			line("    " + mta + " said: " + diag)
		case diag != "":
			line("    " + diag)
		}
	}
	p := part{ctype: "text/plain; charset=us-ascii", desc: "Notification", body: b.Bytes()}
	if global {
		p.ctype = "text/plain; charset=utf-8"
	}
	p.cte = transferEncoding(p.body)
	return p
}
