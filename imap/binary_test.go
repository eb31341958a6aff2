package imap_test

import (
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// binaryPart holds every byte value, NUL, bare CR and LF and a line far
// beyond 998 octets.
var binaryPart = func() string {
	var b strings.Builder
	for i := range 256 {
		b.WriteByte(byte(i))
	}
	b.WriteString("\x00\x00\rbare CR\nbare LF\r\n")
	b.WriteString(strings.Repeat("long line ", 300))
	b.WriteString("\r\n\x00")
	return b.String()
}()

func binaryMessage() string {
	return "From: ann@example.test\r\nSubject: binary\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"=_b\"\r\n\r\npreamble\r\n" +
		"--=_b\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nR=E9union\r\n" +
		"--=_b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: Binary\r\n\r\n" + binaryPart + "\r\n" +
		"--=_b\r\nContent-Type: application/x-thing\r\nContent-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 x\r\nend\r\n" +
		"--=_b--\r\nepilogue\r\n"
}

// literal returns the data of the item named name in a FETCH response
// read by rawClient.line (its literal inline), and whether it was a
// literal8.
func literal(t *testing.T, resp, name string) (string, bool) {
	t.Helper()
	re := regexp.MustCompile(regexp.QuoteMeta(name) + ` (~?)\{(\d+)\}`)
	m := re.FindStringSubmatchIndex(resp)
	if m == nil {
		t.Fatalf("no %s literal in %q", name, resp)
	}
	n, _ := strconv.Atoi(resp[m[4]:m[5]])
	return resp[m[1] : m[1]+n], m[3] > m[2]
}

// TestAppendBinary: an APPEND whose part is in the binary transfer
// encoding, NUL bytes and all, is stored with that part in base64, so
// that BODY[] holds no NUL (RFC 3501 section 4.3); BINARY[part] gives the
// bytes back as a literal8 (RFC 3516); RFC822.SIZE is what is stored.
func TestAppendBinary(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	msg := binaryMessage()
	// A literal8, as BINARY and IMAP4rev2 clients send it.
	rc.ok("APPEND INBOX ~{%d+}\r\n%s", len(msg), msg)
	rc.ok("SELECT INBOX")

	u := rc.ok("FETCH 1 (RFC822.SIZE BODY.PEEK[] BODYSTRUCTURE)")
	body, _ := literal(t, u[0], "BODY[]")
	if strings.ContainsRune(body, 0) {
		t.Errorf("BODY[] holds NUL:\n%q", body)
	}
	if !strings.Contains(body, "Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n") {
		t.Errorf("binary part not relabelled base64:\n%q", body)
	}
	for _, line := range strings.Split(body, "\r\n") {
		if len(line) > 998 {
			t.Errorf("BODY[] has a line of %d octets", len(line))
		}
	}
	// Everything else is as it was sent.
	head, _, _ := strings.Cut(msg, "Content-Transfer-Encoding: Binary")
	if !strings.HasPrefix(body, head) || !strings.HasSuffix(body, msg[strings.Index(msg, "\r\n--=_b\r\nContent-Type: application/x-thing"):]) {
		t.Errorf("BODY[] changed outside the binary part:\n%q", body)
	}
	if !strings.Contains(u[0], "RFC822.SIZE "+strconv.Itoa(len(body))+" ") {
		t.Errorf("RFC822.SIZE is not the stored size %d: %.200q", len(body), u[0])
	}
	if !strings.Contains(u[0], `("application" "octet-stream" NIL NIL NIL "base64" `) {
		t.Errorf("BODYSTRUCTURE: %q", u[0][strings.Index(u[0], "BODYSTRUCTURE"):])
	}

	u = rc.ok("FETCH 1 (BINARY.PEEK[2] BINARY.SIZE[2] BINARY.PEEK[1])")
	got, lit8 := literal(t, u[0], "BINARY[2]")
	if got != binaryPart || !lit8 {
		t.Errorf("BINARY[2] (literal8 %v) = %q, want %q", lit8, got, binaryPart)
	}
	if !strings.Contains(u[0], "BINARY.SIZE[2] "+strconv.Itoa(len(binaryPart))) {
		t.Errorf("BINARY.SIZE[2] not %d: %.100q", len(binaryPart), u[0])
	}
	// The transfer encoding undone, the charset left alone.
	if got, _ := literal(t, u[0], "BINARY[1]"); got != "R\xe9union" {
		t.Errorf("BINARY[1] = %q, want the ISO-8859-1 bytes", got)
	}
}

// TestBinaryRefusals: an unknown transfer encoding is NO [UNKNOWN-CTE]
// (RFC 3516 section 4.2), for BINARY and BINARY.SIZE; a partial BINARY,
// whose <origin> go-imap cannot write, is refused, and BINARY is not
// advertised.
func TestBinaryRefusals(t *testing.T) {
	e := newEnv(t)
	rc := e.raw()
	msg := binaryMessage()
	rc.ok("APPEND INBOX {%d+}\r\n%s", len(msg), msg)
	rc.ok("SELECT INBOX")
	for _, items := range []string{"BINARY.PEEK[3]", "BINARY.SIZE[3]"} {
		if _, status := rc.cmd("FETCH 1 (%s)", items); !strings.HasPrefix(status, "NO [UNKNOWN-CTE]") {
			t.Errorf("FETCH %s: %q, want NO [UNKNOWN-CTE]", items, status)
		}
	}
	if u, status := rc.cmd("FETCH 1 (BINARY.PEEK[2]<0.10>)"); !strings.HasPrefix(status, "NO") || len(find(u, "BINARY")) > 0 {
		t.Errorf("partial BINARY: %q, %q; want NO and no BINARY data", u, status)
	}
	u := rc.ok("CAPABILITY")
	if caps := find(u, `^\* CAPABILITY`); len(caps) != 1 || strings.Contains(caps[0], " BINARY") {
		t.Errorf("CAPABILITY %q: BINARY advertised", u)
	}
	rc.ok("NOOP") // still in step
}
