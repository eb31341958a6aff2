package mailauth

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dmarc"
	"github.com/mailsys/mailsys/mta"
	"github.com/mailsys/mailsys/mta/resolve"
)

// VerifierConfig configures a Verifier. Resolver and Hostname are
// required; the zero values of the others are: no rejection, no Junk
// folder (DMARC only reported), a timeout of 20 s, slog.Default().
// DefaultVerifierConfig turns DMARC's policies on.
type VerifierConfig struct {
	// Resolver answers the TXT, MX, address and PTR lookups of SPF, the
	// key lookups of DKIM and the policy lookups of DMARC.
	Resolver resolve.Resolver
	// Hostname is the authserv-id of the Authentication-Results field
	// (RFC 8601 §2.5): the name of this host, or of the ADMD it checks
	// for, which the delivery agents downstream trust.
	Hostname string
	// RejectOnDMARCReject refuses (550 5.7.1) a message that fails DMARC
	// under a p=reject policy. Without it, such a message is treated as
	// under p=quarantine.
	RejectOnDMARCReject bool
	// QuarantineToJunk files a message that fails DMARC under a
	// p=quarantine policy (or p=reject, when not rejected) in Junk.
	QuarantineToJunk bool
	// Timeout bounds the checks of a message, its DNS lookups mostly: a
	// lookup cut short is a temperror. Zero means 20 s.
	Timeout time.Duration
	// Logger receives a line for each message refused or filed in Junk
	// (Info) and the results of the others (Debug). Nil means
	// slog.Default().
	Logger *slog.Logger
}

const defaultVerifyTimeout = 20 * time.Second

// DefaultVerifierConfig returns the configuration of a Verifier that
// applies DMARC's policies (rejection, Junk), with every default spelled
// out; Resolver and Hostname are to be set.
func DefaultVerifierConfig() VerifierConfig {
	return VerifierConfig{
		RejectOnDMARCReject: true, QuarantineToJunk: true,
		Timeout: defaultVerifyTimeout, Logger: slog.Default(),
	}
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil. NewVerifier calls it.
func (c VerifierConfig) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("mailauth: VerifierConfig.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Resolver == nil {
		bad("Resolver", "required")
	}
	if c.Hostname == "" {
		bad("Hostname", "required")
	} else if _, ok := normDomain(c.Hostname); !ok {
		bad("Hostname", "%q is not a host name", c.Hostname)
	}
	if c.Timeout < 0 {
		bad("Timeout", "negative (%v)", c.Timeout)
	}
	return errors.Join(errs...)
}

// A Verifier checks the origin of the messages received by the MX
// listener: SPF (RFC 7208) for the envelope, DKIM (RFC 6376, RFC 8463)
// for the signatures, DMARC (RFC 7489) for the From domain, and says what
// to do with each, with an Authentication-Results field (RFC 8601) to
// add. Its methods are safe for concurrent use.
type Verifier struct {
	r        resolve.Resolver
	hostname string
	reject   bool
	junk     bool
	timeout  time.Duration
	log      *slog.Logger
	drawKey  [32]byte // for pct= (see draw)
}

var _ mta.Verifier = (*Verifier)(nil)

// NewVerifier returns a Verifier configured by cfg.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{
		r: cfg.Resolver, hostname: cfg.Hostname, reject: cfg.RejectOnDMARCReject, junk: cfg.QuarantineToJunk,
		timeout: cfg.Timeout, log: cfg.Logger,
	}
	if v.timeout == 0 {
		v.timeout = defaultVerifyTimeout
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	rand.Read(v.drawKey[:])
	return v, nil
}

// Verify implements mta.Verifier: it checks msg (Authenticate) and
// returns what DMARC's policy says of it, with the Authentication-Results
// field to prepend as the Verdict's one header. A message that fails
// DMARC under p=reject is refused with 550 5.7.1 if
// VerifierConfig.RejectOnDMARCReject is set; under p=quarantine (or
// p=reject otherwise) it goes to Junk if QuarantineToJunk is set; every
// other message is accepted, those whose checks met a temporary DNS
// failure too. msg is not changed: removing the Authentication-Results
// fields that claim to be this host's from a message arriving (RFC 8601
// §5) is the listener's part.
func (v *Verifier) Verify(ctx context.Context, o mta.Origin, msg []byte) (mta.Verdict, error) {
	res, err := v.Authenticate(ctx, o, msg)
	if err != nil {
		return mta.Verdict{}, err
	}
	verdict := mta.Verdict{Headers: []string{"Authentication-Results: " + res.Format(v.hostname)}}
	switch res.DMARC.Disposition {
	case dmarc.PolicyReject:
		if v.reject {
			verdict.Action = mta.Reject
			verdict.Reply = mta.Reply{Code: 550, Enhanced: [3]int{5, 7, 1},
				Message: "Message rejected: it fails the DMARC policy of " + res.DMARC.From}
			break
		}
		fallthrough
	case dmarc.PolicyQuarantine:
		if v.junk {
			verdict.Action = mta.Junk
		}
	}
	if verdict.Action != mta.Accept {
		v.log.Info("message fails DMARC", "from", res.DMARC.From, "policy", res.DMARC.Policy,
			"rejected", verdict.Action == mta.Reject, "ip", o.IP, "mailfrom", o.MailFrom, "spf", res.SPF.Value)
	} else {
		v.log.Debug("message authenticated", "results", verdict.Headers[0], "ip", o.IP)
	}
	return verdict, nil
}

// Authenticate runs the checks of msg (the whole message, as received)
// from o: SPF and DKIM at once, then DMARC with their outcomes. A check
// that cannot be made (a DNS failure, VerifierConfig.Timeout passed) has
// a temperror outcome, one the message makes impossible a permerror or
// none; Authenticate fails only if ctx is done before the checks are.
func (v *Verifier) Authenticate(ctx context.Context, o mta.Origin, msg []byte) (*Results, error) {
	checkCtx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	fields := splitHeader(msg)
	var res Results
	var wg sync.WaitGroup
	wg.Go(func() { res.SPF = v.checkSPF(checkCtx, o) })
	res.DKIM = v.checkDKIM(checkCtx, msg, fields)
	wg.Wait()
	res.DMARC = v.checkDMARC(checkCtx, fields, msg, res.SPF, res.DKIM)
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mailauth: verify: %w", err)
	}
	return &res, nil
}
