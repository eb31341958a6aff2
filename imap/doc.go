// Package imap is the IMAP front module of mailsys: an IMAP4rev1/IMAP4rev2
// server backend, built on github.com/emersion/go-imap/v2, over a
// userdata.UserDB (folders, flags, the message index) and an
// msstore.Storage (message bodies).
//
// The pieces in place so far:
//
//   - Summarize computes, once per delivered message, the ENVELOPE and
//     BODYSTRUCTURE that go-imap's imapserver.ExtractEnvelope and
//     imapserver.ExtractBodyStructure would, streaming the body, and encodes
//     them compactly for userdata.NewMessage's Envelope and Structure
//     fields. DecodeEnvelope and DecodeStructure turn the cached bytes back
//     into go-imap values, so FETCH ENVELOPE and FETCH BODYSTRUCTURE never
//     re-parse a body.
//   - An evaluator of SEARCH criteria (RFC 3501 section 6.4.4, RFC 9051
//     section 6.4.4, MODSEQ from RFC 7162) that opens a body only when a
//     criterion needs it, and streams it.
package imap
