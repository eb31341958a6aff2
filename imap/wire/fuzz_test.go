package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"testing"
)

// FuzzReadCommand reads the input as a client's stream. The seeds (in
// testdata/fuzz/FuzzReadCommand) are real clients' commands (Thunderbird,
// iOS Mail, K-9, mbsync, Outlook, Delta Chat), the RFCs' examples and
// hostile ones. The Reader never panics, each call takes bounded work and
// memory, and after a refused command of one line (no literal) the
// command after it reads whole.
func FuzzReadCommand(f *testing.F) {
	f.Add([]byte("1 capability\r\n"))
	f.Fuzz(fuzzOne)
}

// fuzzOne is FuzzReadCommand's check of one input.
func fuzzOne(t *testing.T, in []byte) {
	lim := Limits{MaxLine: 4096, MaxLiteral: 4096, MaxNesting: 20, MaxSetRanges: 100, MaxSearchKeys: 200}
	c := &continuer{}
	src := bytes.NewReader(in)
	br := bufio.NewReaderSize(src, 4096)
	r := NewReader(br, lim, c)
	r.AppendLimit = 1 << 16
	left := len(in)
	for range 1000 {
		cmd, err := r.ReadCommand()
		// Bounded work: each command that does not end the stream
		// takes bytes of it.
		if now := src.Len() + br.Buffered(); err == nil || errors.As(err, new(*Error)) {
			if now >= left {
				t.Fatalf("no progress: %d bytes left, %v", now, err)
			}
			left = now
		}
		if r.literals > r.maxLiterals() || r.discarded > DiscardLimit || r.depth > lim.MaxNesting+1 {
			t.Fatalf("bounds broken: literals %d, discarded %d, depth %d", r.literals, r.discarded, r.depth)
		}
		var e *Error
		if errors.As(err, &e) {
			if e.Type != "BAD" && e.Type != "NO" || e.Text == "" {
				t.Fatalf("refused as %+v", e)
			}
			continue
		}
		if err != nil {
			break
		}
		if cmd.Tag == "" || cmd.Name == "" {
			t.Fatalf("command without a tag or name: %+v", cmd)
		}
		switch cmd.Name {
		case "APPEND":
			for range 10 {
				m, err := r.NextAppend()
				if err != nil || m == nil {
					break
				}
				if n, err := io.Copy(io.Discard, m.Body); err == nil && n != m.Size {
					t.Fatalf("body of %d bytes read as %d", m.Size, n)
				}
			}
		case "IDLE":
			r.ReadIdleDone()
		case "AUTHENTICATE":
			r.ReadAuthLine()
		}
	}

	// One line, refused or not, then a NOOP: the NOOP reads. The line is
	// the input's first, or the whole input made one line.
	line, _, _ := bytes.Cut(in, []byte("\n"))
	if !bytes.ContainsAny(line, "{~\r") && len(line) <= 1000 {
		checkBoundary(t, line, lim)
	}
	if len(in) <= 1000 {
		flat := bytes.Map(func(c rune) rune {
			switch c {
			case '\r', '\n', '{', '~':
				return ' '
			}
			return c
		}, in)
		checkBoundary(t, flat, lim)
	}
}

// checkBoundary reads line, refused or not, then a NOOP: the NOOP reads.
func checkBoundary(t *testing.T, line []byte, lim Limits) {
	stream := append(bytes.Clone(line), "\r\nzz NOOP\r\n"...)
	r := NewReader(bufio.NewReader(bytes.NewReader(stream)), lim, &continuer{})
	cmd, err := r.ReadCommand()
	if err == nil && cmd.Name == "APPEND" {
		return // its message would need a literal
	}
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("%q: %v", line, err)
	}
	if err == nil && (cmd.Name == "IDLE" || cmd.Name == "AUTHENTICATE") {
		return // a line of their own follows
	}
	cmd, err = r.ReadCommand()
	if err != nil || cmd.Tag != "zz" || cmd.Name != "NOOP" {
		t.Fatalf("after %q: %v, %v", line, cmd, err)
	}
}
