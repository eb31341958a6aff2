package imap

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

// chunkReader returns r's bytes in chunks of random sizes.
type chunkReader struct {
	r   io.Reader
	rng *rand.Rand
}

func (c chunkReader) Read(p []byte) (int, error) {
	return c.r.Read(p[:min(len(p), 1+c.rng.IntN(40))])
}

// TestCommandReaderPassesThrough: commands within the bounds reach go-imap
// exactly as sent, however the connection cuts them: literals (whose bytes
// may look like commands, bounds or announcements of literals), quoted
// strings with line ends in them, IDLE and its DONE.
func TestCommandReaderPassesThrough(t *testing.T) {
	appended := "d CAPABILITY\r\n{99999+}\r\n((((((\r\n"
	commands := []string{
		"a LOGIN ann pw\r\n",
		"b SELECT INBOX\r\n",
		fmt.Sprintf("c APPEND INBOX (\\Seen) {%d+}\r\n%s\r\n", len(appended), appended),
		"e SEARCH BODY \"quoted \\\" {5000+}\r\n( text\" TEXT {3}\r\nabc\r\n",
		"f APPEND {5}\r\nINBOX {6000+}\r\n" + strings.Repeat("z", 6000) + "\r\n",
		"g IDLE\r\n",
		"DONE\r\n",
		"h FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO)])\r\n",
		"i SEARCH " + strings.Repeat("(", 100) + "ALL" + strings.Repeat(")", 100) + "\r\n",
		"j NOOP " + strings.Repeat("x", maxCommandBytes-10) + "\r\n",
		// Mailbox names, valid, in every form the command reader checks.
		"l LIST (SUBSCRIBED \"REMOTE\" {9}\r\nRECURSIVE) \"\" (\"&AOQ-\" {5+}\r\nx%*-] Caf&AOk-%) RETURN (CHILDREN)\r\n",
		"m UID MOVE 1:* &AOQ-&-\r\n",
		"n RENAME {3+}\r\nabc \"d\\\"e&-\"\r\n",
		"o STATUS Caf&AOk- (MESSAGES)\r\n",
		"p LIST(SPECIAL-USE) \"\"(% \"&ZeVnLIqe-/*\")\r\n",
		"q LSUB {0}\r\n \"*\"\r\n",
		"r ENABLE UTF8=ACCEPT\r\n",
		"s COPY 1,2:4 INBOX\r\n",
		"k LOGOUT\n",
	}
	stream := strings.Join(commands, "")
	starts := map[int]bool{}
	for i := range commands {
		starts[len(strings.Join(commands[:i+1], ""))] = true
	}
	for seed := range uint64(50) {
		rng := rand.New(rand.NewPCG(seed, 1))
		cr := &commandReader{
			src:    chunkReader{strings.NewReader(stream), rng},
			sess:   &session{srv: &Server{log: slog.New(slog.DiscardHandler)}},
			authed: true,
			starts: []int64{0},
			syncAt: -1,
		}
		br := bufio.NewReaderSize(cr, 16)
		cr.br = br
		var got strings.Builder
		buf := make([]byte, 1+rng.IntN(100))
		for {
			n, err := br.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("seed %d: %v after %d bytes", seed, err, got.Len())
			}
			if starts[got.Len()] && rng.IntN(2) == 0 {
				cr.commandStart() // as go-imap does between commands
			}
		}
		if got.String() != stream {
			t.Fatalf("seed %d: got %d bytes, want %d; first difference at %d", seed, got.Len(), len(stream), firstDiff(got.String(), stream))
		}
	}
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestCommandReaderRefusesNames: a mailbox name or pattern that is not
// modified UTF-7 is refused in go-imap's place, at the byte that ends it,
// however the connection cuts the command: go-imap reads the command up
// to there, then the refusal, then (but after a literal, which go-imap
// leaves open) the end of a line it discards; the rest of the command,
// literals and all, is dropped, and the next command comes whole.
func TestCommandReaderRefusesNames(t *testing.T) {
	for _, tc := range []struct {
		send, given string // given: what go-imap reads of the command before the refusal
		literal     bool   // refused at a literal's last byte
	}{
		{"b CREATE \"z&AOQA5A\"\r\n", "b CREATE \"z&AOQA5A", false},
		{"b CREATE z&AOQA5A\r\n", "b CREATE z&AOQA5A", false},
		{"b create z&AOQA5A\n", "b create z&AOQA5A", false},
		{"b SELECT \"a\x01b\"\r\n", "b SELECT \"a\x01b", false},
		{"b EXAMINE \"B\xc3\xbccher\" (CONDSTORE)\r\n", "b EXAMINE \"B\xc3\xbccher", false},
		{"b RENAME INBOX \"a\\\"&\" {15+}\r\nzz CAPABILITY\r\n\r\n", "b RENAME INBOX \"a\\\"&", false},
		{"b RENAME {1}\r\n& x\r\n", "b RENAME {1}\r\n", true},
		{"b RENAME {3+}\r\nabc {4+}\r\n&AOQ {15+}\r\nzz CAPABILITY\r\n\r\n", "b RENAME {3+}\r\nabc {4+}\r\n&AO", true},
		{"b DELETE {8+}\r\nz&AOQA5A\r\n", "b DELETE {8+}\r\nz&AOQA5", true},
		{"b LIST (SUBSCRIBED {3+}\r\n)\"( REMOTE) \"\" (\"a\" z&AOQ* \"c\") RETURN (CHILDREN)\r\n",
			"b LIST (SUBSCRIBED {3+}\r\n)\"( REMOTE) \"\" (\"a\" z&AOQ*", false},
		{"b LIST(SUBSCRIBED) \"\"(z& x)\r\n", "b LIST(SUBSCRIBED) \"\"(z&", false},
		{"b LIST z& *\r\n", "b LIST z&", false},
		{"b LSUB \"\" %&AGEAYgBj-\r\n", "b LSUB \"\" %&AGEAYgBj-", false},
		{"b UID COPY 1:* \"&AOQ-&AOQ-\"\r\n", "b UID COPY 1:* \"&AOQ-&AOQ-", false},
		{"b uid move 1 \"&2D0-\"\r\n", "b uid move 1 \"&2D0-", false},
		{"b MOVE 1 &AAE-\r\n", "b MOVE 1 &AAE-", false},
		{"b APPEND \"z&\" (\\Seen) {15+}\r\nzz CAPABILITY\r\n\r\n", "b APPEND \"z&", false},
		{"b STATUS \"&A\" (MESSAGES)\r\n", "b STATUS \"&A", false},
		{"b SUBSCRIBE \"&-&\"\r\n", "b SUBSCRIBE \"&-&", false},
		{"b CREATE \"a\r\nb\" {15+}\r\nzz CAPABILITY\r\n\r\n", "b CREATE \"a\r\nb", false},
		{"b CREATE z&{3}\r\n", "b CREATE z&", false}, // the client waits for a "+"
		{"b CREATE z&{15+}\r\nzz CAPABILITY\r\n\r\n", "b CREATE z&", false},
		{"b LIST \"\" ({0}\r\n {3+}\r\n\x80%*)\r\n", "b LIST \"\" ({0}\r\n {3+}\r\n\x80%", true},
	} {
		end := "\r\n"
		if tc.literal {
			end = ""
		}
		stream := "a NOOP\r\n" + tc.send + "c NOOP\r\n"
		want := "a NOOP\r\n" + tc.given + end + "c NOOP\r\n"
		starts := map[int]bool{len("a NOOP\r\n"): true}
		if !tc.literal { // after a literal go-imap is at the next command once refused
			starts[len(want)-len("c NOOP\r\n")] = true
		}
		for seed := range uint64(30) {
			rng := rand.New(rand.NewPCG(seed, 2))
			cr := &commandReader{
				src:    chunkReader{strings.NewReader(stream), rng},
				sess:   &session{srv: &Server{log: slog.New(slog.DiscardHandler)}},
				authed: true,
				starts: []int64{0},
				syncAt: -1,
			}
			br := bufio.NewReaderSize(cr, 16)
			cr.br = br
			var got strings.Builder
			refusedAt := -1
			buf := make([]byte, 1+rng.IntN(100))
			for {
				n, err := br.Read(buf)
				got.Write(buf[:n])
				if err == io.EOF {
					break
				}
				var imapErr *goimap.Error
				if errors.As(err, &imapErr) && refusedAt < 0 {
					refusedAt = got.Len()
					if imapErr.Type != goimap.StatusResponseTypeBad || !strings.HasPrefix(imapErr.Text, "Invalid mailbox name: ") {
						t.Errorf("%q: refused with %v", tc.send, err)
					}
					if tc.literal {
						cr.commandStart() // go-imap answers, and reads no more of the command
					}
					continue
				}
				if err != nil {
					t.Fatalf("%q, seed %d: %v after %q", tc.send, seed, err, got.String())
				}
				if starts[got.Len()] && rng.IntN(2) == 0 {
					cr.commandStart()
				}
			}
			if want := len("a NOOP\r\n" + tc.given); refusedAt != want {
				t.Errorf("%q, seed %d: refused after %d bytes, want %d", tc.send, seed, refusedAt, want)
			}
			if got.String() != want {
				t.Fatalf("%q, seed %d: go-imap read\n%q, want\n%q", tc.send, seed, got.String(), want)
			}
		}
	}
}

// BenchmarkCommandReader measures what the command reader costs go-imap
// per byte of commands: FETCH and STORE, whose arguments it does not
// tokenize, and commands that take mailbox names, which it checks.
func BenchmarkCommandReader(b *testing.B) {
	for _, bc := range []struct{ name, cmds string }{
		{"FETCH-STORE", "a FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT)])\r\nb STORE 1:5,7 +FLAGS.SILENT (\\Seen $Junk)\r\n"},
		{"UID-FETCH-STORE", "a UID FETCH 1:* (UID FLAGS BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT)])\r\nb UID STORE 1:5,7 +FLAGS.SILENT (\\Seen $Junk)\r\n"},
		{"names", "a SELECT \"Caf&AOk-/Archive\"\r\nb LIST (SUBSCRIBED) \"\" (\"INBOX\" \"Work/%\")\r\nc UID MOVE 1:* Archive/2024\r\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			stream := strings.Repeat(bc.cmds, 1000)
			b.SetBytes(int64(len(stream)))
			buf := make([]byte, 4096)
			for b.Loop() {
				cr := &commandReader{
					src:    strings.NewReader(stream),
					sess:   &session{srv: &Server{log: slog.New(slog.DiscardHandler)}},
					authed: true,
					starts: []int64{0},
					syncAt: -1,
				}
				br := bufio.NewReader(cr)
				cr.br = br
				for {
					if _, err := br.Read(buf); err == io.EOF {
						break
					} else if err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
