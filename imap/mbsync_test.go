package imap_test

import (
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

// variedMessage is message i of a mailbox of varied messages: plain,
// 8-bit, encoded words, multipart with an attachment, long lines.
func variedMessage(i int) string {
	subject := fmt.Sprintf("message %d", i)
	switch i % 5 {
	case 0:
		return message(subject, "plain text\r\n")
	case 1:
		return "From: =?UTF-8?B?5byg5LiJ?= <zhang@example.cn>\r\nTo: ann@example.test\r\nSubject: " + subject +
			"\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n你好，世界 café\r\n"
	case 2:
		return "From: bob@example.net\r\nSubject: " + subject + "\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n" +
			"--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n" +
			"Content-Disposition: attachment; filename=x.bin\r\n\r\nAAECAwQFBgcICQ==\r\n--b1--\r\n"
	case 3:
		return message(subject, strings.Repeat("a long line of text ", 40)+"\r\n.\r\n..dots\r\n")
	default:
		return message(subject, "")
	}
}

// TestMbsync syncs a mailbox of a few hundred varied messages to a local
// Maildir with mbsync (isync), changes the Maildir, syncs back, and
// checks that both sides match.
func TestMbsync(t *testing.T) {
	if _, err := exec.LookPath("mbsync"); err != nil {
		t.Skip("no mbsync (Debian package isync)")
	}
	e := newEnv(t)
	c := e.client()
	const n = 300
	want := map[string]string{} // subject → message
	for i := range n {
		m := variedMessage(i)
		var flags []goimap.Flag
		if i%3 == 0 {
			flags = append(flags, goimap.FlagSeen)
		}
		if i%7 == 0 {
			flags = append(flags, goimap.FlagFlagged)
		}
		appendMsg(t, c, "INBOX", m, flags...)
		want[fmt.Sprintf("message %d", i)] = m
	}
	if err := c.Create("Lists/Go", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	appendMsg(t, c, "Lists/Go", message("in a subfolder", "x\r\n"))

	dir := t.TempDir()
	certFile := filepath.Join(dir, "server.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: testTLS.Certificates[0].Certificate[0]}), 0o600); err != nil {
		t.Fatal(err)
	}
	maildir := filepath.Join(dir, "mail")
	if err := os.Mkdir(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(e.tls, ":")
	cfg := fmt.Sprintf(`IMAPAccount srv
Host %s
Port %s
User ann@example.test
Pass pw
SSLType IMAPS
SystemCertificates no
CertificateFile %s

IMAPStore remote
Account srv

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel both
Far :remote:
Near :local:
Patterns *
Create Both
Expunge Both
SyncState *
`, host, port, certFile, maildir, maildir)
	cfgFile := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sync := func() {
		t.Helper()
		out, err := exec.Command("mbsync", "-c", cfgFile, "-a").CombinedOutput()
		if err != nil {
			t.Fatalf("mbsync: %v\n%s", err, out)
		}
	}
	sync()

	// The Maildir has every message, byte for byte but for mbsync's line
	// endings (LF on disk) and its X-TUID header, with its flags.
	local := readMaildir(t, filepath.Join(maildir, "INBOX"))
	if len(local) != n {
		t.Fatalf("Maildir INBOX has %d messages, want %d", len(local), n)
	}
	for subject, lm := range local {
		if stripTUID(lm.body) != strings.ReplaceAll(want[subject], "\r\n", "\n") {
			t.Fatalf("%s: Maildir copy differs:\n%q\nwant\n%q", subject, lm.body, want[subject])
		}
		var i int
		fmt.Sscanf(subject, "message %d", &i)
		if seen := strings.Contains(lm.flags, "S"); seen != (i%3 == 0) {
			t.Errorf("%s: Maildir flags %q", subject, lm.flags)
		}
	}
	if sub := readMaildir(t, filepath.Join(maildir, "Lists", "Go")); len(sub) != 1 {
		t.Errorf("Maildir Lists/Go has %d messages, want 1", len(sub))
	}

	// Change the Maildir: new messages, a flag, deletions.
	for i := range 20 {
		m := strings.ReplaceAll(message(fmt.Sprintf("local %d", i), "written locally\r\n"), "\r\n", "\n")
		name := filepath.Join(maildir, "INBOX", "new", fmt.Sprintf("1700000000.local%d.host", i))
		if err := os.WriteFile(name, []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
		want[fmt.Sprintf("local %d", i)] = m
	}
	deleted := 0
	for subject, lm := range local {
		var i int
		fmt.Sscanf(subject, "message %d", &i)
		switch {
		case i%10 == 1:
			os.Remove(lm.path)
			delete(want, subject)
			deleted++
		case i%10 == 2 && !strings.Contains(lm.flags, "S"):
			os.Rename(lm.path, lm.path+"S")
		}
	}
	sync()

	// The server now holds what the Maildir holds.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	got, err := c.Fetch(goimap.SeqSet{{Start: 1, Stop: 0}}, &goimap.FetchOptions{Envelope: true, Flags: true}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var subjects []string
	for _, m := range got {
		subjects = append(subjects, m.Envelope.Subject)
		var i int
		if _, err := fmt.Sscanf(m.Envelope.Subject, "message %d", &i); err == nil && i%10 == 2 && !slices.Contains(m.Flags, goimap.FlagSeen) {
			t.Errorf("%s: \\Seen set in the Maildir did not reach the server: %v", m.Envelope.Subject, m.Flags)
		}
	}
	var wantSubjects []string
	for s := range want {
		wantSubjects = append(wantSubjects, s)
	}
	slices.Sort(subjects)
	slices.Sort(wantSubjects)
	if !slices.Equal(subjects, wantSubjects) {
		t.Fatalf("after syncing back the server has %d messages, want %d (%d deleted, 20 added)", len(subjects), len(wantSubjects), deleted)
	}
	// A message uploaded by mbsync reads back as written (mbsync adds an
	// X-TUID header of its own).
	body, err := c.Fetch(goimap.SeqSetNum(uint32(len(got))), &goimap.FetchOptions{BodySection: []*goimap.FetchItemBodySection{{Peek: true}}}).Collect()
	if err != nil || len(body) != 1 || !strings.HasSuffix(string(body[0].FindBodySection(&goimap.FetchItemBodySection{Peek: true})), "written locally\r\n") {
		t.Errorf("uploaded message: %+v, %v", body, err)
	}
}

// stripTUID removes the X-TUID header mbsync adds to the messages it
// copies.
func stripTUID(m string) string {
	head, body, _ := strings.Cut(m, "\n\n")
	var keep []string
	for _, line := range strings.Split(head, "\n") {
		if !strings.HasPrefix(line, "X-TUID: ") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n") + "\n\n" + body
}

type maildirMessage struct {
	path, body, flags string
}

// readMaildir returns a Maildir folder's messages by subject.
func readMaildir(t *testing.T, dir string) map[string]maildirMessage {
	t.Helper()
	out := map[string]maildirMessage{}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, de := range entries {
			path := filepath.Join(dir, sub, de.Name())
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			subject := ""
			for _, line := range strings.Split(string(b), "\n") {
				if s, ok := strings.CutPrefix(line, "Subject: "); ok {
					subject = s
					break
				}
			}
			_, flags, _ := strings.Cut(de.Name(), ":2,")
			out[subject] = maildirMessage{path, string(b), flags}
		}
	}
	return out
}
