package mailauth

import (
	"bufio"
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mailsys/mailsys/internal/fsutil"
)

// Errors of the Signer, for errors.Is.
var (
	// ErrUnknownDomain reports a domain the Signer does not sign for:
	// SignerConfig.Domains says it is not ours (or, without Domains, it
	// has no keys), or it is not a domain name.
	ErrUnknownDomain = errors.New("mailauth: not a domain signed here")
	// ErrUnknownSelector reports a selector the domain has no key for.
	ErrUnknownSelector = errors.New("mailauth: no such selector")
	// ErrSigningSelector reports an attempt to retire the keys that sign:
	// Rotate first.
	ErrSigningSelector = errors.New("mailauth: the selector signs (rotate first)")
	// ErrBadKey reports a key file in the directory that cannot be used.
	ErrBadKey = errors.New("mailauth: unusable key file")
)

// SignerConfig configures a Signer. Only Dir is required.
type SignerConfig struct {
	// Dir holds the keys (see the package documentation for the
	// layout). It is made, mode 0700, if missing; what in it others may
	// read is made private, with a warning. One process at a time may
	// use a Dir.
	Dir string
	// Domains reports whether mail from a domain (its From address's,
	// lower case, in A-labels) is to be signed, so whether keys are made
	// for it: true for the domains the system serves. An error fails the
	// Sign, Records or Rotate that asked. It is called on every Sign, so
	// that a domain removed from the system is no longer signed, and
	// concurrently: it should be quick (a cached lookup) and safe for
	// concurrent use. Nil means the domains that have keys in Dir, no
	// other: the first keys of a domain are then made by Rotate.
	Domains func(ctx context.Context, domain string) (bool, error)
	// Logger receives the keys made and removed, and the oddities of
	// Dir. Nil means slog.Default().
	Logger *slog.Logger
}

// DefaultSignerConfig returns the configuration of a Signer keeping its
// keys in dir, with every default spelled out: a starting point to change.
func DefaultSignerConfig(dir string) SignerConfig {
	return SignerConfig{Dir: dir, Logger: slog.Default()}
}

// Validate reports every problem of c at once (errors.Join, each naming
// its field), or nil. NewSigner calls it.
func (c SignerConfig) Validate() error {
	var errs []error
	if c.Dir == "" {
		errs = append(errs, errors.New("mailauth: SignerConfig.Dir: required"))
	}
	return errors.Join(errs...)
}

// A Signer makes the DKIM signatures of outbound mail (RFC 6376): an
// ed25519-sha256 one (RFC 8463) and an rsa-sha256 one for each message,
// with the keys of its From domain, which it makes the first time they
// are needed and keeps in its directory. Its methods are safe for
// concurrent use.
type Signer struct {
	ks      keyStore
	ours    func(ctx context.Context, domain string) (bool, error)
	log     *slog.Logger
	now     func() time.Time // names the pairs made
	mu      sync.Mutex       // guards domains, not the keys in it
	domains map[string]*domainKeys
}

// NewSigner returns a Signer over the keys in cfg.Dir, which it reads
// now: an unreadable key file is an error (ErrBadKey); half a pair (a
// crash while it was made) and files that are not keys are logged and
// ignored.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	if err := os.MkdirAll(cfg.Dir, fsutil.DirMode); err != nil {
		return nil, fmt.Errorf("mailauth: key directory: %w", err)
	}
	fsutil.TightenLog(log, cfg.Dir)
	s := &Signer{ks: keyStore{cfg.Dir, log}, ours: cfg.Domains, log: log, now: time.Now}
	var err error
	if s.domains, err = s.ks.load(); err != nil {
		return nil, err
	}
	return s, nil
}

// Sign reads a message (header and body, CRLF or LF line ends) to its end
// and returns the DKIM-Signature fields to prepend to it, each folded and
// ending in CRLF: one ed25519-sha256 and one rsa-sha256, both
// relaxed/relaxed, with d= the From domain, the domain's signing
// selectors, a timestamp, and the usual fields signed (From, twice so
// that none can be added; To, Cc, Subject, Date, Message-ID, the
// References, MIME and List-* fields... each as many times as it
// appears). The message is streamed, not kept (but for its header
// section), and not changed; bounding its size is the caller's part.
//
// The domain is that of the first address of the first From field. A
// message without one that parses, or whose domain is not ours
// (SignerConfig.Domains), is not signed: Sign returns "" and nil. A
// domain's first keys are made by the first Sign (or Records) that needs
// them; concurrent calls make one pair. Sign fails on a read error of
// msg, if ctx is done, or if Domains fails.
func (s *Signer) Sign(ctx context.Context, msg io.Reader) (string, error) {
	br := bufio.NewReader(ctxReader{ctx, msg})
	hdr, _, err := readHeader(br)
	if err != nil {
		return "", fmt.Errorf("mailauth: sign: %w", err)
	}
	fields := splitHeader(hdr)
	domain, err := fromDomain(fields, true)
	if err != nil {
		s.log.Debug("message not signed", "reason", err)
		return "", nil
	}
	p, _, err := s.signingPair(ctx, domain)
	if err != nil || p == nil {
		return "", err
	}
	return sign(p, domain, signedKeys(fields), hdr, br)
}

// Records returns the TXT records that publish the domain's public keys:
// two per pair kept, the signing pair's first, then older ones until they
// are retired. A domain without keys gets its first pair, if it is ours.
// A domain not ours is ErrUnknownDomain.
func (s *Signer) Records(ctx context.Context, domain string) ([]Record, error) {
	d, ok := normDomain(domain)
	if !ok {
		return nil, fmt.Errorf("mailauth: %q: %w", domain, ErrUnknownDomain)
	}
	_, dk, err := s.signingPair(ctx, d)
	if err != nil {
		return nil, err
	}
	if dk == nil {
		return nil, fmt.Errorf("mailauth: %s: %w", d, ErrUnknownDomain)
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	var recs []Record
	for _, p := range slices.Backward(dk.pairs) {
		r, err := p.records(d)
		if err != nil {
			return nil, err
		}
		recs = append(recs, r...)
	}
	return recs, nil
}

// Rotate makes a new pair of keys for domain, under selectors of their
// own ("ms20261202e" and "ms20261202r", "ms20261202n2e"... for a second
// pair that day), which sign from now on. The older pairs stay published
// (Records) until Retire removes them: publish the new records before
// mail signed with them reaches other hosts, keep the old ones while mail
// signed with them may still be verified. Without SignerConfig.Domains,
// Rotate is what makes a domain's first keys.
func (s *Signer) Rotate(ctx context.Context, domain string) error {
	d, ok := normDomain(domain)
	if !ok {
		return fmt.Errorf("mailauth: %q: %w", domain, ErrUnknownDomain)
	}
	if s.ours != nil {
		ours, err := s.ours(ctx, d)
		if err != nil {
			return fmt.Errorf("mailauth: domain %s: %w", d, err)
		}
		if !ours {
			return fmt.Errorf("mailauth: %s: %w", d, ErrUnknownDomain)
		}
	}
	dk := s.entry(d, true)
	dk.mu.Lock()
	defer dk.mu.Unlock()
	_, err := s.addPair(d, dk)
	return err
}

// Retire removes the pair of keys of domain that selector (either of the
// pair's two) names: its files, and its records from Records. The signing
// pair cannot be retired (ErrSigningSelector); a selector the domain has
// no key for is ErrUnknownSelector. Retire also removes what a crash left
// of a pair being made.
func (s *Signer) Retire(ctx context.Context, domain, selector string) error {
	d, _ := normDomain(domain)
	name, _, ok := parseSelector(selector)
	dk := s.entry(d, false)
	if !ok || dk == nil {
		return fmt.Errorf("mailauth: %s %q: %w", domain, selector, ErrUnknownSelector)
	}
	dk.mu.Lock()
	defer dk.mu.Unlock()
	i := slices.Index(dk.taken, name)
	switch {
	case i < 0:
		return fmt.Errorf("mailauth: %s %q: %w", d, selector, ErrUnknownSelector)
	case dk.signing() != nil && dk.signing().name == name:
		return fmt.Errorf("mailauth: %s %q: %w", d, selector, ErrSigningSelector)
	}
	if err := s.ks.removePair(d, name); err != nil {
		return err
	}
	dk.taken = slices.Delete(dk.taken, i, i+1)
	dk.pairs = slices.DeleteFunc(dk.pairs, func(p *keyPair) bool { return p.name == name })
	s.log.Info("DKIM keys retired", "domain", d, "selectors", []string{name.ed(), name.rsa()})
	return nil
}

// signingPair returns the pair that signs for domain (in normDomain's
// form) and the domain's keys, making the first pair if the domain is
// ours and has none; nil and nil for a domain not ours.
func (s *Signer) signingPair(ctx context.Context, domain string) (*keyPair, *domainKeys, error) {
	if s.ours == nil {
		dk := s.entry(domain, false)
		if dk == nil {
			return nil, nil, nil
		}
		dk.mu.Lock()
		defer dk.mu.Unlock()
		return dk.signing(), dk, nil
	}
	ours, err := s.ours(ctx, domain)
	if err != nil {
		return nil, nil, fmt.Errorf("mailauth: domain %s: %w", domain, err)
	}
	if !ours {
		return nil, nil, nil
	}
	dk := s.entry(domain, true)
	dk.mu.Lock()
	defer dk.mu.Unlock()
	if p := dk.signing(); p != nil {
		return p, dk, nil
	}
	p, err := s.addPair(domain, dk)
	return p, dk, err
}

// entry returns the keys of domain, an empty entry made for it if create
// is set and it has none.
func (s *Signer) entry(domain string, create bool) *domainKeys {
	s.mu.Lock()
	defer s.mu.Unlock()
	dk := s.domains[domain]
	if dk == nil && create {
		dk = &domainKeys{}
		s.domains[domain] = dk
	}
	return dk
}

// addPair makes a new pair of keys for domain, stores it and makes it the
// signing one. dk.mu must be held.
func (s *Signer) addPair(domain string, dk *domainKeys) (*keyPair, error) {
	p, err := newKeyPair(nextName(s.now(), dk.taken))
	if err != nil {
		return nil, err
	}
	if err := s.ks.writePair(domain, p); err != nil {
		return nil, err
	}
	dk.taken = append(dk.taken, p.name)
	dk.pairs = append(dk.pairs, p)
	s.log.Info("DKIM keys made", "domain", domain, "selectors", []string{p.name.ed(), p.name.rsa()})
	return p, nil
}

// signedHeaders are the fields signed when present (RFC 6376 §5.4.1's
// list, the MIME fields, RFC 2369's and RFC 8058's List-* fields).
var signedHeaders = []string{
	"From", "Sender", "Reply-To", "To", "Cc", "Subject", "Date", "Message-ID",
	"In-Reply-To", "References", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-ID", "Content-Description", "Content-Disposition", "Content-Language",
	"Resent-Date", "Resent-From", "Resent-Sender", "Resent-To", "Resent-Cc", "Resent-Message-ID",
	"List-Id", "List-Help", "List-Unsubscribe", "List-Unsubscribe-Post", "List-Subscribe",
	"List-Post", "List-Owner", "List-Archive",
}

// signedKeys returns the h= list for a message with fields: every field
// of signedHeaders as many times as it appears, and From once more (RFC
// 6376 §8.15: a From added later breaks the signature).
func signedKeys(fields []field) []string {
	var keys []string
	for _, name := range signedHeaders {
		for _, f := range fields {
			if strings.EqualFold(f.name, name) {
				keys = append(keys, name)
			}
		}
	}
	return append(keys, "From")
}

// sign returns the DKIM-Signature fields of p's keys for a message whose
// header section is hdr and whose body is the rest of body.
func sign(p *keyPair, domain string, keys []string, hdr []byte, body io.Reader) (string, error) {
	var signers []*dkim.Signer
	defer func() {
		for _, ds := range signers {
			ds.Close() // ends its goroutine; a second Close is harmless
		}
	}()
	var ws []io.Writer
	for _, k := range p.keys() {
		ds, err := dkim.NewSigner(&dkim.SignOptions{
			Domain: domain, Selector: k.selector, Signer: k.key, Hash: crypto.SHA256,
			HeaderCanonicalization: dkim.CanonicalizationRelaxed,
			BodyCanonicalization:   dkim.CanonicalizationRelaxed,
			HeaderKeys:             keys,
		})
		if err != nil {
			return "", fmt.Errorf("mailauth: sign: %w", err)
		}
		signers = append(signers, ds)
		ws = append(ws, ds)
	}
	w := io.MultiWriter(ws...)
	_, err := w.Write(hdr)
	if err == nil {
		_, err = io.Copy(w, body)
	}
	if err != nil {
		return "", fmt.Errorf("mailauth: sign: %w", err)
	}
	var b strings.Builder
	for _, ds := range signers {
		if err := ds.Close(); err != nil {
			return "", fmt.Errorf("mailauth: sign: %w", err)
		}
		b.WriteString(ds.Signature())
	}
	return b.String(), nil
}

// ctxReader reads r until ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(b []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(b)
}
