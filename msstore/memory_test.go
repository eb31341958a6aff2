package msstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/msstore/storetest"
)

func TestMemoryConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) msstore.Storage { return msstore.NewMemory(7) })
}

// TestMemoryBody checks what the Memory promises about its Bodies beyond the
// conformance suite.
func TestMemoryBody(t *testing.T) {
	m := msstore.NewMemory(7)
	defer m.Close()
	ref, err := m.Put(t.Context(), strings.NewReader("hello"), msstore.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (msstore.Ref{Node: 7, Size: 5, ID: 1, Sum: ref.Sum}); ref != want {
		t.Errorf("Put gave %v, want %v", ref, want)
	}
	b, err := m.Open(t.Context(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.ReadAt(make([]byte, 1), -1); err == nil || n != 0 {
		t.Errorf("ReadAt at offset -1 = %d, %v; want an error", n, err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := b.ReadAt(make([]byte, 1), 0); !errors.Is(err, msstore.ErrClosed) {
		t.Errorf("ReadAt after Close: %v, want ErrClosed", err)
	}
}

func ExampleMemory() {
	ctx := context.Background()
	store := msstore.NewMemory(1)
	defer store.Close()

	ref, err := store.Put(ctx, strings.NewReader("Subject: hello\r\n\r\nHi Alice!\r\n"), msstore.Meta{
		MessageID: "<1@example.org>",
		Received:  time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC),
		Owners:    []msstore.Owner{{User: "alice@example.org", Mailbox: "INBOX"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	body, err := store.Open(ctx, ref)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer body.Close()
	data, err := io.ReadAll(io.NewSectionReader(body, 0, body.Size()))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("body %d of %d bytes: %q\n", ref.ID, body.Size(), data)
	// Output:
	// body 1 of 29 bytes: "Subject: hello\r\n\r\nHi Alice!\r\n"
}
