package cluster

import (
	"errors"
	"math"
	"testing"
)

func registryOf(nodes ...Node) Registry { return Registry{Version: 1, Nodes: nodes} }

func ms(id string, num uint32, w int) Node {
	return Node{ID: id, Num: num, Roles: RoleMS, Addr: "127.0.0.1:1", Weight: w}
}

// shares places n bodies and returns each node's share.
func shares(t *testing.T, p *Placer, reg Registry, healthy func(string) bool, n int) map[string]float64 {
	t.Helper()
	got := map[string]int{}
	for range n {
		node, err := p.Pick(reg, healthy)
		if err != nil {
			t.Fatal(err)
		}
		got[node.ID]++
	}
	s := map[string]float64{}
	for id, c := range got {
		s[id] = float64(c) / float64(n)
	}
	return s
}

func wantShares(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	for id, w := range want {
		if math.Abs(got[id]-w) > 0.03*w+1e-9 {
			t.Errorf("%s: %s took %.4f of the placements, want %.4f (±3%%)", what, id, got[id], w)
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok && g > 0 {
			t.Errorf("%s: %s took %.4f of the placements, want none", what, id, g)
		}
	}
}

// TestPlacerWeights: 10:10, then MS3 added at 5:5:10, over 30,000
// placements each, then a mask and an unhealthy node.
func TestPlacerWeights(t *testing.T) {
	p := NewPlacer(RoleMS)
	ud := Node{ID: "ud1", Num: 9, Roles: RoleUD, Addr: "127.0.0.1:2", Weight: 100}
	reg := registryOf(ms("ms1", 1, 10), ms("ms2", 2, 10), ud)
	wantShares(t, "10:10", shares(t, p, reg, nil, 30000), map[string]float64{"ms1": 0.5, "ms2": 0.5})

	reg = registryOf(ms("ms1", 1, 5), ms("ms2", 2, 5), ms("ms3", 3, 10), ud)
	wantShares(t, "5:5:10", shares(t, p, reg, nil, 30000), map[string]float64{"ms1": 0.25, "ms2": 0.25, "ms3": 0.5})

	masked := reg
	masked.Nodes = append([]Node(nil), reg.Nodes...)
	masked.Nodes[2].Masked = true
	wantShares(t, "ms3 masked", shares(t, p, masked, nil, 30000), map[string]float64{"ms1": 0.5, "ms2": 0.5})

	down := func(id string) bool { return id != "ms1" }
	wantShares(t, "ms1 down", shares(t, p, reg, down, 30000), map[string]float64{"ms2": 1.0 / 3, "ms3": 2.0 / 3})

	zero := registryOf(ms("ms1", 1, 0), ms("ms2", 2, 3), ms("ms3", 3, 1))
	wantShares(t, "0:3:1", shares(t, p, zero, nil, 30000), map[string]float64{"ms2": 0.75, "ms3": 0.25})
}

// TestPlacerSmooth: with 1:1:2 no node is picked twice in a row more than
// its weight asks, so that bursts spread.
func TestPlacerSmooth(t *testing.T) {
	p := NewPlacer(RoleMS)
	reg := registryOf(ms("a", 1, 1), ms("b", 2, 1), ms("c", 3, 2))
	var seq []string
	for range 8 {
		n, _ := p.Pick(reg, nil)
		seq = append(seq, n.ID)
	}
	for i := 1; i < len(seq); i++ {
		if seq[i] == seq[i-1] && seq[i] != "c" {
			t.Fatalf("picks %v: %s twice in a row", seq, seq[i])
		}
	}
}

func TestPlacerNone(t *testing.T) {
	p := NewPlacer(RoleUD)
	reg := registryOf(ms("ms1", 1, 10), Node{ID: "ud1", Num: 2, Roles: RoleUD, Addr: "x:1", Weight: 10, Masked: true})
	if _, err := p.Pick(reg, nil); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Pick with the only UD masked: %v, want ErrNoNode", err)
	}
	reg.Nodes[1].Masked = false
	if _, err := p.Pick(reg, nil, "ud1"); !errors.Is(err, ErrNoNode) {
		t.Fatalf("Pick skipping the only UD: %v, want ErrNoNode", err)
	}
	if n, err := p.Pick(reg, nil); err != nil || n.ID != "ud1" {
		t.Fatalf("Pick = %v, %v; want ud1", n.ID, err)
	}
}

func BenchmarkPlacerPick(b *testing.B) {
	p := NewPlacer(RoleMS)
	reg := registryOf(ms("ms1", 1, 5), ms("ms2", 2, 5), ms("ms3", 3, 10), ms("ms4", 4, 10))
	for b.Loop() {
		if _, err := p.Pick(reg, nil); err != nil {
			b.Fatal(err)
		}
	}
}
