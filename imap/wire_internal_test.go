package imap

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
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
