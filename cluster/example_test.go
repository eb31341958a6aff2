package cluster_test

import (
	"fmt"

	"github.com/mailsys/mailsys/cluster"
)

// Weights decide where new bodies go: 10:10, then a third MS node added
// at 5:5:10, with nothing moved.
func ExamplePlacer() {
	p := cluster.NewPlacer(cluster.RoleMS)
	reg := cluster.Registry{Nodes: []cluster.Node{
		{ID: "ms1", Num: 1, Roles: cluster.RoleMS, Addr: "10.0.0.1:7001", Weight: 10},
		{ID: "ms2", Num: 2, Roles: cluster.RoleMS, Addr: "10.0.0.2:7001", Weight: 10},
	}}
	count := func() map[string]int {
		c := map[string]int{}
		for range 1000 {
			n, _ := p.Pick(reg, nil)
			c[n.ID]++
		}
		return c
	}
	fmt.Println(count())
	reg.Nodes[0].Weight, reg.Nodes[1].Weight = 5, 5
	reg.Nodes = append(reg.Nodes, cluster.Node{ID: "ms3", Num: 3, Roles: cluster.RoleMS, Addr: "10.0.0.3:7001", Weight: 10})
	fmt.Println(count())
	// Output:
	// map[ms1:500 ms2:500]
	// map[ms1:250 ms2:250 ms3:500]
}
