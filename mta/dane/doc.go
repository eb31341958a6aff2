// Package dane authenticates the server of an outbound SMTP connection by
// its DANE TLSA records: SMTP security via opportunistic DANE TLS
// (RFC 7672), over the TLSA records of RFC 6698 as RFC 7671 updates them.
//
// # Where it fits
//
// The outbound queue (mta/queue) looks TLSA records up, with
// resolve.Resolver.LookupTLSA for _25._tcp of the MX host, only when the
// MX host name and its addresses came in authentic (DNSSEC-validated)
// answers, and then, by RFC 7672 §2.2:
//
//   - an authentic answer with records: Usable picks the ones SMTP can
//     use. If some are usable, STARTTLS is mandatory and the server must
//     be authenticated by them: Config makes the tls.Config whose
//     handshake fails unless Verify succeeds. If none is usable, TLS is
//     still mandatory but the certificate goes unchecked;
//   - an authentic denial (resolve.ErrNotFound with Authentic), or an
//     answer that is not authentic: no DANE for this host;
//   - any other failure of the lookup: the host is not used for now.
//
// # What a match is
//
// Usable keeps DANE-TA(2) and DANE-EE(3) records (PKIX-TA(0) and PKIX-EE(1)
// are not for SMTP, RFC 7672 §3.1.3) whose selector (the full certificate,
// or its SubjectPublicKeyInfo) and matching type (the data itself, its
// SHA-256 or its SHA-512) are known. Verify then accepts the server when:
//
//   - DANE-EE(3): its certificate (the first it sent) matches a record;
//     neither names nor dates are checked (RFC 7672 §3.1.1);
//   - DANE-TA(2): a certificate of the chain it sent matches a record, the
//     server's certificate chains up to it, every certificate on the way
//     is within its validity period, and the server's certificate is for
//     one of the reference names (RFC 7672 §3.1.2, §3.2). The trust
//     anchor must be in the chain, as RFC 7672 §3.1.2 requires of
//     servers; the server's own certificate is a trust anchor only when it
//     is self-issued.
//
// The reference names are the MX host name (the TLSA base domain, also
// sent as SNI) and the next-hop domain. A certificate's
// names are its DNS subject alternative names, or its subject common name
// when it has none; a "*" is a wildcard only as the whole left-most label,
// and stands for exactly one label (RFC 7672 §3.2, RFC 6125 §6.4.3).
// Names compare without regard to case or a trailing dot, and must be
// A-labels.
package dane
