package devenv

import "testing"

func TestFreePortsAreDistinctAndFree(t *testing.T) {
	ports, err := FreePorts(8)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Errorf("port %d handed out twice in %v", p, ports)
		}
		seen[p] = true
		if err := PortFree(p); err != nil {
			t.Errorf("port %d is still bound after FreePorts returned: %v", p, err)
		}
	}
}
