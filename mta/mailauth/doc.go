// Package mailauth authenticates mail: a Signer signs outbound messages
// with DKIM, and a Verifier checks inbound ones with SPF, DKIM and DMARC
// and writes down what it found in an Authentication-Results field. The
// Verifier is the mta.Verifier of the MX listener; its DNS goes through a
// resolve.Resolver, so resolve.Static serves a zone in tests.
//
// It implements:
//
//   - RFC 6376 (DKIM), with the relaxed/relaxed canonicalizations for
//     signing, and RFC 8301: rsa-sha256 only, RSA keys of 2048 bits made
//     (at least 1024 accepted); RFC 8463: ed25519-sha256, each message
//     signed with both algorithms. On github.com/emersion/go-msgauth/dkim.
//   - RFC 7208 (SPF) for the reverse path's domain, or for the HELO name
//     when the reverse path is null (the HELO name is not checked
//     otherwise: §2.3 only recommends it, and DMARC does not use it); on
//     blitiri.com.ar/go/spf.
//   - RFC 7489 (DMARC): the author domain is the domain of the From
//     field's addresses (a message with no From field, several, one that
//     does not parse or one naming addresses in several domains gets
//     dmarc=permerror and no policy); the policy record of that domain,
//     or of its organizational domain (with sp= then); relaxed or strict
//     alignment (adkim=, aspf=) of a passing SPF domain or a passing
//     DKIM signature's d=; pct= by a keyed hash of the message, the same
//     for the same message. Organizational domains come from the public
//     suffix list of golang.org/x/net/publicsuffix, as compiled into the
//     version of that module the build uses. Records are parsed with
//     go-msgauth/dmarc; the lookup is this package's, so that several
//     records at a name mean no policy, as §6.6.3 says. A record that
//     does not parse is dmarc=permerror, its policy not applied (§6.6.3
//     would read one with a bad p= and a valid rua= as p=none: the same
//     verdict).
//   - RFC 8601 (Authentication-Results), with header.s, header.a and
//     header.b (RFC 6008) for DKIM; one field, on one line.
//
// A temporary DNS failure makes a temperror outcome, never a rejection:
// DMARC is temperror, and its policy not applied, when an identifier
// aligned with the author domain could not be checked and none passed.
//
// # Keys on disk
//
// The Signer keeps its keys in SignerConfig.Dir, readable by its owner
// only:
//
//	Dir/                      0700
//	  example.org/            0700, one directory per domain (lower case, A-labels)
//	    ms20261202e.pem       0600, PKCS#8 PEM: the ed25519 key of selector ms20261202e
//	    ms20261202r.pem       0600, the RSA key of selector ms20261202r
//	    ms20270315e.pem       a later pair, made by Rotate: the one that signs
//	    ms20270315r.pem
//
// Keys come in pairs, an ed25519 and an RSA key under selectors named
// after the day the pair was made (UTC) and ending in e and r; a second
// pair made the same day is ms20270315n2e and ms20270315n2r. The pair with
// the greatest name signs; the others are published until retired. A
// pair is written whole or not at all as far as the Signer is concerned:
// each key to a temporary file, synced, then both renamed and the
// directory synced; a crash between the renames leaves half a pair, which
// is ignored (with a warning) and whose name is not used again, and
// temporary files are removed when the Signer starts. The keys are read
// when the Signer is made and kept in memory: one process at a time may
// use a Dir (two would each make a domain's first keys, and neither would
// see the other's rotations).
package mailauth
