package testpg

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// PacketDrop makes the kernel drop every TCP packet to or from one port on
// loopback, in the host's network namespace: a network partition, not a
// proxy holding bytes. Connections through the port stay open on both
// sides and hear nothing; their TCP retransmits with backoff, and a new
// connection's SYN goes unanswered. Other ports (a Proxy's own
// connection to its target, replication) are untouched.
type PacketDrop struct {
	iptables string
	port     int

	mu sync.Mutex
	on bool
}

// NewPacketDrop prepares to drop the packets of port. It needs root and
// an iptables binary; without them the error is a
// *MissingPacketDropError.
func NewPacketDrop(port int) (*PacketDrop, error) {
	var missing []string
	if os.Geteuid() != 0 {
		missing = append(missing, fmt.Sprintf("root (running as uid %d)", os.Geteuid()))
	}
	path, err := exec.LookPath("iptables")
	if err != nil {
		// Debian's iptables is in /usr/sbin, which a user's PATH may lack.
		if isExecutable("/usr/sbin/iptables") {
			path = "/usr/sbin/iptables"
		} else {
			missing = append(missing, "an iptables binary (not in PATH or /usr/sbin)")
		}
	}
	if len(missing) > 0 {
		return nil, &MissingPacketDropError{Missing: missing}
	}
	return &PacketDrop{iptables: path, port: port}, nil
}

// MissingPacketDropError says what dropping packets needs and is missing.
type MissingPacketDropError struct{ Missing []string }

func (e *MissingPacketDropError) Error() string {
	return fmt.Sprintf("dropping packets with iptables needs %s: run as root with the iptables package installed (Debian: apt-get install iptables)",
		strings.Join(e.Missing, " and "))
}

// Port is the port whose packets are dropped.
func (d *PacketDrop) Port() int { return d.port }

// rules are the two rules, as iptables arguments from the chain on: what
// goes to the port and what comes from it. Loopback traffic passes OUTPUT
// only, on lo.
func (d *PacketDrop) rules() [][]string {
	var rules [][]string
	for _, dir := range []string{"--dport", "--sport"} {
		rules = append(rules, []string{"OUTPUT", "-o", "lo", "-p", "tcp", dir, strconv.Itoa(d.port),
			"-m", "comment", "--comment", dropComment, "-j", "DROP"})
	}
	return rules
}

// dropComment marks the rules, so that one left behind says who put it there.
const dropComment = "gatehouse testpg.PacketDrop"

// Drop inserts the rules; packets on the port drop until Restore.
func (d *PacketDrop) Drop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.on {
		return nil
	}
	d.on = true // so that Restore removes a rule inserted before a failure
	for _, r := range d.rules() {
		if err := d.run("-I", r); err != nil {
			return errors.Join(err, d.restore())
		}
	}
	return nil
}

// Restore removes the rules and checks that none is left: packets flow
// again. It is safe to call more than once.
func (d *PacketDrop) Restore() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.on {
		return nil
	}
	return d.restore()
}

func (d *PacketDrop) restore() error {
	var errs []error
	for _, r := range d.rules() {
		// -D removes one copy; -C says whether one is left.
		for {
			there, err := d.present(r)
			if err == nil && there {
				err = d.run("-D", r)
			}
			if err != nil {
				errs = append(errs, err)
			}
			if err != nil || !there {
				break
			}
		}
	}
	if len(errs) == 0 {
		d.on = false
	}
	return errors.Join(errs...)
}

// present says whether rule is in its chain: iptables -C exits 1 when it
// is not, and with another status when it could not tell.
func (d *PacketDrop) present(rule []string) (bool, error) {
	err := d.run("-C", rule)
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 1 {
		return false, nil
	}
	return err == nil, err
}

// run runs iptables with -w, which waits for the xtables lock that other
// users of iptables (a cluster's CNI, kube-proxy) take.
func (d *PacketDrop) run(op string, rule []string) error {
	args := append([]string{"-w", op}, rule...)
	out, err := exec.Command(d.iptables, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", d.iptables, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
