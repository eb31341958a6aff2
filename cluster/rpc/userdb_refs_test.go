package rpc

import (
	"errors"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/mailsys/mailsys/cluster/rpc/pb"
	"github.com/mailsys/mailsys/msstore"
	"github.com/mailsys/mailsys/userdata"
)

// TestRewriteRefsBadAnswers: the node refuses an answer that names an
// entry out of its batch or a ref that does not decode, writes nothing of
// it, and a database without the capability answers Unimplemented.
func TestRewriteRefsBadAnswers(t *testing.T) {
	ctx := t.Context()
	db := newTestMemory(t, nil)
	user, inbox := testUser(t, db)
	ref := msstore.Ref{Node: 1, ID: 7, Size: 5, Sum: 9}
	if _, err := db.Append(ctx, user, inbox, userdata.NewMessage{Ref: ref, Size: 5}); err != nil {
		t.Fatal(err)
	}
	conn := serve(t, func(s *grpc.Server) { RegisterUserDB(s, db) })
	raw := pb.NewUserDBClient(conn)
	for what, change := range map[string]*pb.UDRefChange{
		"index out of the batch": {Index: 1, Ref: refBytes(ref)},
		"undecodable ref":        {Index: 0, Ref: []byte{2, 0, 1}},
	} {
		st, err := raw.RewriteRefs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := st.Recv()
		if err != nil || len(batch.GetRefs()) != 1 {
			t.Fatalf("%s: first batch %v, %v", what, batch, err)
		}
		if err := st.Send(&pb.UDRefAnswer{Changes: []*pb.UDRefChange{change}}); err != nil {
			t.Fatal(err)
		}
		for err == nil {
			_, err = st.Recv()
		}
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("%s: %v, want InvalidArgument", what, err)
		}
	}
	var got msstore.Ref
	db.Messages(ctx, user, inbox, nil, func(m *userdata.Message) error { got = m.Ref; return nil })
	if got != ref {
		t.Fatalf("ref after refused answers: %v, want %v", got, ref)
	}

	// Through the client: the same rules, as userdata errors.
	c := remote(t, db)
	_, err := c.RewriteRefs(ctx, func(refs []msstore.Ref) error { refs[0].Sum++; return nil })
	if !errors.Is(err, userdata.ErrInvalid) {
		t.Fatalf("RewriteRefs to another body: %v, want ErrInvalid", err)
	}

	// A database without the capability.
	type plain struct{ userdata.UserDB }
	c = remote(t, plain{db})
	if _, err := c.RewriteRefs(ctx, func([]msstore.Ref) error { return nil }); err == nil {
		t.Fatal("RewriteRefs on a database without the capability succeeded")
	}
}
