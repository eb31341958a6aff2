package gate

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"sync"
	"testing"
)

// capped admits at most max connections at once.
type capped struct {
	mu        sync.Mutex
	max, open int
}

func (c *capped) Admit(_ string, _ netip.Addr) (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.open >= c.max {
		return nil, errors.New("full")
	}
	c.open++
	return func() { c.mu.Lock(); c.open--; c.mu.Unlock() }, nil
}

// TestListener: past the cap a client reads the refusal and then EOF;
// once an admitted connection closes, a new one is admitted.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adm := &capped{max: 1}
	l := &Listener{Listener: inner, Name: "test", Admitter: adm, Refusal: []byte("busy\r\n")}
	defer l.Close()
	accepted := make(chan net.Conn)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c1 := dial()
	defer c1.Close()
	s1 := <-accepted
	c2 := dial()
	line, err := bufio.NewReader(c2).ReadString('\n')
	if line != "busy\r\n" {
		t.Fatalf("refused client read %q, %v", line, err)
	}
	if n, err := c2.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("refused connection still open: %d, %v", n, err)
	}
	c2.Close()
	s1.Close()
	s1.Close() // twice gives back one place
	c3 := dial()
	defer c3.Close()
	s3 := <-accepted
	defer s3.Close()
	adm.mu.Lock()
	open := adm.open
	adm.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d connections counted open, want 1", open)
	}
}
