package imap

import (
	"bytes"
	"reflect"
	"testing"

	goimap "github.com/emersion/go-imap/v2"
)

// The seed corpora are in testdata/fuzz/<FuzzName>/; the messages of
// testdata/messages are added as seeds too.

func FuzzDecodeEnvelope(f *testing.F) {
	for _, msg := range corpus(f) {
		env, _, err := Summarize(bytes.NewReader(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(env)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		env, refs, err := DecodeThreading(b)
		if err != nil {
			return
		}
		b2 := appendEnvelopeSummary(nil, env, refs)
		env2, refs2, err := DecodeThreading(b2)
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !reflect.DeepEqual(env, env2) || !reflect.DeepEqual(refs, refs2) {
			t.Fatalf("round trip:\n got %#v %q\nwant %#v %q", env2, refs2, env, refs)
		}
		if b3 := appendEnvelopeSummary(nil, env2, refs2); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding is not stable:\n%q\n%q", b2, b3)
		}
	})
}

func FuzzDecodeStructure(f *testing.F) {
	for _, msg := range corpus(f) {
		_, bs, err := Summarize(bytes.NewReader(msg))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(bs)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		bs, err := DecodeStructure(b)
		if err != nil {
			return
		}
		b2, err := appendStructureSummary(nil, bs)
		if err != nil {
			t.Fatalf("decoded structure does not encode: %v", err)
		}
		bs2, err := DecodeStructure(b2)
		if err != nil {
			t.Fatalf("re-encoded structure does not decode: %v", err)
		}
		if !reflect.DeepEqual(bs, bs2) {
			t.Fatalf("round trip:\n got %s\nwant %s", dump(bs2), dump(bs))
		}
		if b3, _ := appendStructureSummary(nil, bs2); !bytes.Equal(b2, b3) {
			t.Fatalf("encoding is not stable:\n%q\n%q", b2, b3)
		}
	})
}

// FuzzSummarize checks that Summarize never panics, that its output
// decodes, and that it agrees with go-imap's extraction on the same input
// (sameSummary).
func FuzzSummarize(f *testing.F) {
	for _, msg := range corpus(f) {
		if len(msg) < 8<<10 { // big seeds make slow minimization
			f.Add(msg)
		}
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		env, bs, _, _ := summarize(t, msg)
		wantEnv, wantBS := goimapSummary(msg)
		if depth(wantBS) >= maxDepth {
			return // cut short on purpose
		}
		if err := sameSummary(env, wantEnv, bs, wantBS, false); err != nil {
			t.Fatal(err)
		}
	})
}

// depth is the nesting depth of bs, 1 for a leaf.
func depth(bs goimap.BodyStructure) int {
	switch bs := bs.(type) {
	case *goimap.BodyStructureMultiPart:
		d := 0
		for _, c := range bs.Children {
			d = max(d, depth(c))
		}
		return d + 1
	case *goimap.BodyStructureSinglePart:
		if bs.MessageRFC822 != nil && bs.MessageRFC822.BodyStructure != nil {
			return depth(bs.MessageRFC822.BodyStructure) + 1
		}
	}
	return 1
}
