package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/mailsys/mailsys"
	"github.com/mailsys/mailsys/mta/queue"
)

// The outbound settings: where the queue sends the mail of other domains
// (-transport, -smarthost and the file's [outbound]), and the switches of
// the queue, DKIM signing and the inbound checks.

// smartHost is the smart host as the flags and the file's
// [outbound.smarthost] give it, before setSmartHost makes it a
// queue.Route.
type smartHost struct {
	addr         string   // HOST:PORT, "" for none
	user         string   // AUTH PLAIN user name, with passwordFile
	passwordFile string   // the file holding the password
	tls          string   // tlsImplicit or tlsSTARTTLS
	domains      []string // the domains it takes, lower case; none: all
}

// The values of -smarthost-tls.
const (
	tlsImplicit = "implicit"
	tlsSTARTTLS = "starttls"
)

// setSmartHost checks the smart host's settings and sets o.cfg.Outbound's
// SmartHost and SmartHostDomains from them, the password read from its
// file. It returns the problems, each naming the flag or the file's key.
func (o *options) setSmartHost() []error {
	sh := &o.smartHost
	const prefix = "outbound.smarthost."
	// without is the problem of a setting given without the one it needs,
	// which is named as the first was given: a key of the file, or a flag.
	without := func(flagName, key, needFlag, needKey string) error {
		if o.inFile[prefix+key] && !o.set[flagName] {
			return fmt.Errorf("%s: %s%s: without %s%s", o.configFile, prefix, key, prefix, needKey)
		}
		return fmt.Errorf("-%s: without -%s", flagName, needFlag)
	}
	var errs []error
	if sh.addr == "" {
		if o.refused[prefix+"address"] {
			return nil // said already
		}
		for _, s := range []struct {
			flagName, key string
			on            bool
		}{
			{"smarthost-user", "user", sh.user != ""},
			{"smarthost-password-file", "password_file", sh.passwordFile != ""},
			{"smarthost-tls", "tls", o.set["smarthost-tls"] || o.inFile[prefix+"tls"] && !o.refused[prefix+"tls"]},
			{"smarthost-domains", "domains", len(sh.domains) > 0},
		} {
			if s.on {
				errs = append(errs, without(s.flagName, s.key, "smarthost", "address"))
			}
		}
		return errs
	}
	if sh.user != "" && sh.passwordFile == "" {
		errs = append(errs, without("smarthost-user", "user", "smarthost-password-file", "password_file"))
	}
	if sh.user == "" && sh.passwordFile != "" {
		errs = append(errs, without("smarthost-password-file", "password_file", "smarthost-user", "user"))
	}
	r := &queue.Route{Addr: sh.addr, Username: sh.user, ImplicitTLS: sh.tls == tlsImplicit}
	if sh.passwordFile != "" {
		pw, err := readPassword(sh.passwordFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", o.origin("smarthost-password-file", prefix+"password_file"), err))
		}
		r.Password = pw
	}
	if len(errs) == 0 {
		o.cfg.Outbound.SmartHost, o.cfg.Outbound.SmartHostDomains = r, sh.domains
	}
	return errs
}

// readPassword returns the password in file: its one line, without the
// line end.
func readPassword(file string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case pw == "":
		return "", fmt.Errorf("%s: empty", file)
	case strings.ContainsAny(pw, "\r\n"):
		return "", fmt.Errorf("%s: more than one line", file)
	}
	return pw, nil
}

// parseTransport reads a transport map entry, DOMAIN and HOST:PORT, and
// returns its domain in lower case.
func parseTransport(domain, addr string) (string, error) {
	d := strings.ToLower(strings.TrimSuffix(domain, "."))
	if err := checkDomain(d); err != nil {
		return "", err
	}
	return d, checkHostPort(addr)
}

// checkDomain checks a domain name as the outbound queue takes it: ASCII
// labels (A-labels for the others: xn--...) of letters, digits, '-' and
// '_', dot-separated.
func checkDomain(d string) error {
	if d != "" && len(d) <= 253 && !slices.ContainsFunc(strings.Split(d, "."), badLabel) {
		return nil
	}
	return fmt.Errorf("%q is not a domain name (ASCII, xn--... for others)", d)
}

// badLabel reports whether l cannot be a label of a DNS name.
func badLabel(l string) bool {
	return l == "" || len(l) > 63 || strings.IndexFunc(l, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
	}) >= 0
}

// checkHostPort checks a next hop's address: a host name or an IP
// address, and a port.
func checkHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%q: want HOST:PORT", addr)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return fmt.Errorf("%q: port %q out of range", addr, port)
	}
	if net.ParseIP(host) == nil && checkDomain(host) != nil {
		return fmt.Errorf("%q: %q is not a host name or an IP address", addr, host)
	}
	return nil
}

// transportFlags collects -transport DOMAIN=HOST:PORT values, checked as
// they are set.
type transportFlags map[string]queue.Route

func (t *transportFlags) String() string {
	if t == nil {
		return ""
	}
	return formatTransports(*t)
}

func (t *transportFlags) Set(v string) error {
	domain, addr, ok := strings.Cut(v, "=")
	if !ok {
		return errors.New("want DOMAIN=HOST:PORT")
	}
	d, err := parseTransport(domain, addr)
	if err != nil {
		return err
	}
	if _, dup := (*t)[d]; dup {
		return fmt.Errorf("%s given twice", d)
	}
	if *t == nil {
		*t = transportFlags{}
	}
	(*t)[d] = queue.Route{Addr: addr}
	return nil
}

// formatTransports writes a transport map as -transport takes it, sorted:
// "example.net=10.0.0.5:25,example.org=...".
func formatTransports(m map[string]queue.Route) string {
	var out []string
	for _, d := range slices.Sorted(maps.Keys(m)) {
		out = append(out, d+"="+m[d].Addr)
	}
	return strings.Join(out, ",")
}

// routes sets a transport map from a table of domain = "HOST:PORT".
type routes struct{ p *map[string]queue.Route }

func (r routes) UnmarshalTOML(v any) error {
	t, ok := v.(map[string]any)
	if !ok {
		return wrongType(`a table of "domain" = "HOST:PORT"`, v)
	}
	out := make(map[string]queue.Route, len(t))
	var bad []string
	for _, k := range slices.Sorted(maps.Keys(t)) {
		addr, ok := t[k].(string)
		if !ok {
			bad = append(bad, fmt.Sprintf("%q: %v", k, wrongType("a string", t[k])))
			continue
		}
		d, err := parseTransport(k, addr)
		if _, dup := out[d]; err == nil && dup {
			err = fmt.Errorf("%s given twice", d)
		}
		if err != nil {
			bad = append(bad, fmt.Sprintf("%q: %v", k, err))
			continue
		}
		out[d] = queue.Route{Addr: addr}
	}
	if len(bad) > 0 {
		return errors.New(strings.Join(bad, "; "))
	}
	*r.p = out
	return nil
}

// hostPort sets a HOST:PORT, or "" for none; it is a flag too.
type hostPort struct{ p *string }

func (h hostPort) String() string {
	if h.p == nil {
		return ""
	}
	return *h.p
}

func (h hostPort) Set(v string) error {
	if v != "" {
		if err := checkHostPort(v); err != nil {
			return err
		}
	}
	*h.p = v
	return nil
}

func (h hostPort) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wrongType(`"HOST:PORT"`, v)
	}
	return h.Set(s)
}

// tlsMode sets how TLS starts with the smart host: tlsImplicit or
// tlsSTARTTLS; it is a flag too.
type tlsMode struct{ p *string }

func (m tlsMode) String() string {
	if m.p == nil {
		return ""
	}
	return *m.p
}

func (m tlsMode) Set(v string) error {
	if v != tlsImplicit && v != tlsSTARTTLS {
		return fmt.Errorf("%q: want %s or %s", v, tlsImplicit, tlsSTARTTLS)
	}
	*m.p = v
	return nil
}

func (m tlsMode) UnmarshalTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return wrongType(`"`+tlsImplicit+`" or "`+tlsSTARTTLS+`"`, v)
	}
	return m.Set(s)
}

// domainList sets a list of domain names, lower-cased: from a flag, comma
// separated ("" for none), or from an array of strings.
type domainList struct{ p *[]string }

func (l domainList) String() string {
	if l.p == nil {
		return ""
	}
	return strings.Join(*l.p, ",")
}

func (l domainList) Set(v string) error {
	var list []string
	for d := range strings.SplitSeq(v, ",") {
		if d = strings.TrimSpace(d); d != "" {
			list = append(list, d)
		}
	}
	return l.set(list)
}

func (l domainList) UnmarshalTOML(v any) error {
	var list []string
	if err := (strs{&list}).UnmarshalTOML(v); err != nil {
		return err
	}
	return l.set(list)
}

func (l domainList) set(list []string) error {
	out := make([]string, 0, len(list))
	for _, d := range list {
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		if err := checkDomain(d); err != nil {
			return err
		}
		out = append(out, d)
	}
	*l.p = out
	return nil
}

// printDKIM writes to w, for each of domains, the DKIM TXT records to
// publish in its zone, as zone file lines, when the System signs. A
// domain whose records cannot be had is logged and skipped.
func printDKIM(ctx context.Context, w io.Writer, sys *mailsys.System, domains []string, log *slog.Logger) {
	signer := sys.DKIM()
	if signer == nil {
		return
	}
	for _, d := range domains {
		recs, err := signer.Records(ctx, d)
		if err != nil {
			log.Warn("DKIM records not had", "domain", d, "err", err)
			continue
		}
		fmt.Fprintf(w, "DKIM records to publish in the DNS of %s:\n", d)
		for _, r := range recs {
			fmt.Fprintln(w, r.Zone())
		}
	}
}

// logOutbound logs where the outbound queue is and where it sends mail,
// or that there is none.
func logOutbound(sys *mailsys.System, cfg *mailsys.Config, log *slog.Logger) {
	if sys.Queue() == nil {
		log.Info("no outbound queue: submission refuses recipients of other domains")
		return
	}
	oc := &cfg.Outbound
	attrs := []any{"dir", sys.Queue().Dir(), "dkim", sys.DKIM() != nil}
	if len(oc.Transports) > 0 {
		attrs = append(attrs, "transports", formatTransports(oc.Transports))
	}
	if sh := oc.SmartHost; sh != nil {
		attrs = append(attrs, "smarthost", sh.Addr, "smarthost_domains", cmp.Or(strings.Join(oc.SmartHostDomains, ","), "all"))
	}
	log.Info("outbound queue", attrs...)
}
