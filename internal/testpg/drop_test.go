package testpg

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testenv"
)

// While the rules are in, an established connection hears nothing and a
// new one is not accepted; once they are out, what was sent meanwhile is
// delivered (TCP retransmits it) and new connections are accepted.
func TestPacketDrop(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	d, err := NewPacketDrop(port)
	if err != nil {
		if missing := (*MissingPacketDropError)(nil); errors.As(err, &missing) {
			testenv.MissingDependency(t, err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Restore(); err != nil {
			t.Error(err)
		}
	})
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echo(t, c, 'a', time.Second)

	for range 2 { // a second Drop adds nothing
		if err := d.Drop(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range d.rules() {
		if n := d.copies(t, r); n != 1 {
			t.Fatalf("%d copies of the rule %v, want 1", n, r)
		}
	}
	if _, err := c.Write([]byte{'b'}); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("reading an established connection while packets drop: %v, want a timeout", err)
	}
	if nc, err := net.DialTimeout("tcp", ln.Addr().String(), 500*time.Millisecond); err == nil {
		nc.Close()
		t.Fatal("a new connection was accepted while packets drop")
	}

	for range 2 { // a second Restore finds nothing to do
		if err := d.Restore(); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range d.rules() {
		if n := d.copies(t, r); n != 0 {
			t.Fatalf("%d copies of the rule %v left after Restore", n, r)
		}
	}
	// The 'b' sent during the drop arrives by retransmission, within
	// TCP's backoff (200 ms doubling, from the write).
	got := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || got[0] != 'b' {
		t.Fatalf("after the drop: read %q, %v; want the byte sent during it", got, err)
	}
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
	if err != nil {
		t.Fatalf("a new connection after the drop: %v", err)
	}
	defer nc.Close()
	echo(t, nc, 'c', time.Second)
}

// echo sends b and reads it back within d.
func echo(t *testing.T, c net.Conn, b byte, d time.Duration) {
	t.Helper()
	if _, err := c.Write([]byte{b}); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 1)
	_ = c.SetReadDeadline(time.Now().Add(d))
	if _, err := io.ReadFull(c, got); err != nil || got[0] != b {
		t.Fatalf("echo: read %q, %v; want %q", got, err, b)
	}
}

// copies counts the rules in OUTPUT that match r's port and direction and
// carry PacketDrop's comment (iptables -S prints them in its own words).
func (d *PacketDrop) copies(t *testing.T, r []string) int {
	t.Helper()
	out, err := exec.Command(d.iptables, "-w", "-S", "OUTPUT").CombinedOutput()
	if err != nil {
		t.Fatalf("iptables -S OUTPUT: %v: %s", err, out)
	}
	match := slices.Index(r, "-p")
	dir := r[match+2] + " " + r[match+3] + " " // --dport P
	n := 0
	for line := range strings.Lines(string(out)) {
		if strings.Contains(line, dir) && strings.Contains(line, dropComment) {
			n++
		}
	}
	return n
}
