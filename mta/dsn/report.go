package dsn

import (
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/mailsys/mailsys/internal/dnsname"
)

// Errors.
var (
	// ErrInvalid wraps every reason Build refuses a Report; each names
	// the field at fault.
	ErrInvalid = errors.New("dsn: invalid report")
	// ErrMalformed wraps every reason Parse refuses its input.
	ErrMalformed = errors.New("dsn: malformed notification")
)

// DefaultMaxReturn is the size up to which the original message is
// returned whole when Report.MaxReturn is zero.
const DefaultMaxReturn = 1 << 20

// MaxHeaderReturn bounds the original's header when only the header is
// returned: past it, the header is cut at the end of a line.
const MaxHeaderReturn = 256 << 10

// Action is what happened to a recipient: the Action field of RFC 3464
// §2.3.3.
type Action string

// The actions of RFC 3464 §2.3.3.
const (
	// Failed: the message could not be delivered to the recipient and
	// will not be tried again.
	Failed Action = "failed"
	// Delayed: not delivered yet; delivery is still being tried.
	Delayed Action = "delayed"
	// Delivered: delivered to the recipient's mailbox.
	Delivered Action = "delivered"
	// Relayed: handed to a system that does not send notifications
	// itself (one that does not offer the DSN extension).
	Relayed Action = "relayed"
	// Expanded: delivered, and passed on to further addresses (an
	// alias or a list).
	Expanded Action = "expanded"
)

// Report is one notification to make: about one message, for some of
// its recipients. Build only reads it (and the Original through
// ReadAt), so one Report may be built more than once.
type Report struct {
	// ReportingMTA is this host's name: "Reporting-MTA: dns; <name>",
	// and the From address MAILER-DAEMON@<name>. Required, a host name
	// (letters, digits, hyphens and dots; a trailing dot is dropped).
	ReportingMTA string
	// To is the original's envelope sender, to whom the notification
	// goes (its To field). Required: nobody sends a notification to the
	// null reverse path (RFC 3461 §6.1).
	To string
	// EnvID is the original's ENVID (decoded from xtext), "" if none:
	// the Original-Envelope-Id field.
	EnvID string
	// Arrival is when the original was accepted (Arrival-Date); zero
	// leaves the field out.
	Arrival time.Time
	// Ret is the original's RET parameter (RFC 3461 §4.3): "FULL",
	// "HDRS" or "" (in any case). HDRS returns only the original's
	// header; otherwise the whole original is returned if it is at most
	// MaxReturn bytes, and only its header if not.
	Ret string
	// Recipients are the recipients reported on, at least one, each in
	// its own block of fields, in this order.
	Recipients []Recipient
	// Original is the original message as queued (header and body),
	// OriginalSize bytes of it. Required. Line ends are made CRLF in
	// the copy returned (a bare CR or LF becomes CRLF).
	Original     io.ReaderAt
	OriginalSize int64
	// MaxReturn is the largest original returned whole; past it, only
	// its header is. Zero means DefaultMaxReturn; negative is invalid.
	MaxReturn int64
	// Date is the notification's own date (its Date field); zero means
	// the time of Build.
	Date time.Time
	// MessageID is the notification's Message-ID without the angle
	// brackets, "" to make one (random, at ReportingMTA).
	MessageID string
}

// Recipient is what a notification says of one recipient.
type Recipient struct {
	// Final is the recipient's address (Final-Recipient: rfc822; …, or
	// utf-8; … for an address that is not ASCII). Required.
	Final string
	// Original is ORCPT as given (decoded from xtext) in its
	// "addr-type;address" form, such as "rfc822;bob@example.org", ""
	// if none (Original-Recipient). A value without a type is taken as
	// rfc822.
	Original string
	// Action is what happened: Failed, Delayed, Delivered, Relayed or
	// Expanded. Required.
	Action Action
	// Status is the enhanced status code (RFC 3463), such as "5.1.1",
	// "4.4.1" or "2.0.0": class 2, 4 or 5, then two numbers of one to
	// three digits. "" stands for 5.0.0 when Failed, 4.0.0 when
	// Delayed and 2.0.0 otherwise.
	Status string
	// RemoteMTA is the host that answered (Remote-MTA: dns; …), "" if
	// none.
	RemoteMTA string
	// Diagnostic is the remote server's reply, such as "550 5.1.1 No
	// such user" (Diagnostic-Code: smtp; …), "" if none. The lines of a
	// multi-line reply are joined with spaces, and a long one is cut
	// to MaxDiagnostic bytes.
	Diagnostic string
	// LastAttempt is when delivery was last tried (Last-Attempt-Date);
	// zero if never.
	LastAttempt time.Time
	// WillRetryUntil, for Delayed, is when delivery will be given up
	// (Will-Retry-Until); zero leaves it out. It is ignored for the
	// other actions.
	WillRetryUntil time.Time
}

// MaxDiagnostic bounds the diagnostic written for a recipient, and every
// other value from outside: longer ones are cut, with "..." marking the
// cut.
const MaxDiagnostic = 900

var statusCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// ret is r.Ret in upper case: "FULL", "HDRS" or "".
func (r *Report) ret() string { return strings.ToUpper(r.Ret) }

// maxReturn is r.MaxReturn with its default.
func (r *Report) maxReturn() int64 {
	if r.MaxReturn == 0 {
		return DefaultMaxReturn
	}
	return r.MaxReturn
}

// validate reports every problem of r at once, each wrapping ErrInvalid
// and naming its field.
func (r *Report) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("dsn: Report.%s: %s: %w", field, fmt.Sprintf(format, args...), ErrInvalid))
	}
	if !dnsname.IsHost(strings.TrimSuffix(r.ReportingMTA, ".")) {
		bad("ReportingMTA", "%q is not a host name", r.ReportingMTA)
	}
	if strings.TrimSpace(r.To) == "" {
		bad("To", "empty: no notification goes to the null reverse path")
	}
	switch r.ret() {
	case "", "FULL", "HDRS":
	default:
		bad("Ret", "%q is neither FULL nor HDRS", r.Ret)
	}
	if r.Original == nil {
		bad("Original", "nil")
	}
	if r.OriginalSize < 0 {
		bad("OriginalSize", "negative (%d)", r.OriginalSize)
	}
	if r.MaxReturn < 0 {
		bad("MaxReturn", "negative (%d)", r.MaxReturn)
	}
	if r.MessageID != "" && !isMessageID(r.MessageID) {
		bad("MessageID", "%q is not an id-left@id-right without brackets or spaces", r.MessageID)
	}
	if len(r.Recipients) == 0 {
		bad("Recipients", "none")
	}
	for i, rc := range r.Recipients {
		field := fmt.Sprintf("Recipients[%d]", i)
		if strings.TrimSpace(rc.Final) == "" {
			bad(field+".Final", "empty")
		}
		switch rc.Action {
		case Failed, Delayed, Delivered, Relayed, Expanded:
		default:
			bad(field+".Action", "%q is not one of failed, delayed, delivered, relayed, expanded", rc.Action)
		}
		if rc.Status != "" && !statusCode.MatchString(rc.Status) {
			bad(field+".Status", "%q is not an enhanced status code (class.subject.detail)", rc.Status)
		}
	}
	return errors.Join(errs...)
}

// status is rc's Status, or the default for its Action.
func (rc *Recipient) status() string {
	switch {
	case rc.Status != "":
		return rc.Status
	case rc.Action == Failed:
		return "5.0.0"
	case rc.Action == Delayed:
		return "4.0.0"
	}
	return "2.0.0"
}

// isMessageID reports whether s can stand between the angle brackets of
// a Message-ID: printable ASCII without brackets or spaces, with an @.
func isMessageID(s string) bool {
	if len(s) > MaxDiagnostic || !strings.Contains(s, "@") {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '<' || c == '>' {
			return false
		}
	}
	return true
}

// Notifies reports whether a recipient's NOTIFY parameter (RFC 3461
// §4.1: "" when not given, "NEVER", or a comma-separated set of SUCCESS,
// FAILURE and DELAY) asks for a notification of kind ("SUCCESS",
// "FAILURE" or "DELAY"). Without NOTIFY, failures and delays are
// reported: the RFC leaves the default to the server.
func Notifies(notify, kind string) bool {
	if notify == "" {
		return kind != "SUCCESS"
	}
	for n := range strings.SplitSeq(notify, ",") {
		if strings.EqualFold(strings.TrimSpace(n), kind) {
			return true
		}
	}
	return false
}
