package resolve

import "testing"

// The records LookupTLSA returns are the caller's, their data included.
func TestStaticTLSACopies(t *testing.T) {
	var s Static
	s.SetTLSA(25, "mx.example.test", TLSA{Usage: 3, Selector: 1, MatchingType: 1, Data: []byte{1, 2, 3}})
	recs, _, err := s.LookupTLSA(t.Context(), 25, "mx.example.test")
	if err != nil || len(recs) != 1 {
		t.Fatalf("LookupTLSA = %v %v", recs, err)
	}
	recs[0].Data[0] = 9
	recs, _, _ = s.LookupTLSA(t.Context(), 25, "mx.example.test")
	if recs[0].Data[0] != 1 {
		t.Error("changing a returned record changed the zone")
	}
}
