package testpg

import (
	"net"
	"sync"
)

// Proxy is a TCP forwarder on 127.0.0.1 that stands for what sits between a
// token server and its database: a Kubernetes Service whose endpoint
// switches to a promoted replica (SetTarget), a network that goes down
// (Down: connections refused and reset) or stalls (Stall: bytes held, no
// error). For packets really dropped, in the kernel, see PacketDrop on
// its Port.
type Proxy struct {
	ln net.Listener

	mu      sync.Mutex
	target  string
	down    bool
	stalled bool
	resume  chan struct{} // closed when a stall ends
	conns   map[net.Conn]struct{}
}

// NewProxy forwards a new port on 127.0.0.1 to target (host:port).
func NewProxy(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, resume: make(chan struct{})}
	close(p.resume)
	go p.accept()
	return p, nil
}

// Port is the port the proxy listens on.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// SetTarget sends new connections to target. Existing ones stay where
// they are, as with a Service's endpoints: they end when their backend
// goes.
func (p *Proxy) SetTarget(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Down resets every connection and refuses new ones until Up.
func (p *Proxy) Down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = true
	for c := range p.conns {
		_ = c.Close()
	}
}

// Up accepts connections again.
func (p *Proxy) Up() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = false
}

// Stall holds every byte in both directions, on existing and new
// connections, until Resume: no error reaches either side.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stalled {
		p.stalled = true
		p.resume = make(chan struct{})
	}
}

// Resume delivers what a stall held and forwards again.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled {
		p.stalled = false
		close(p.resume)
	}
}

// Close stops the proxy and its connections.
func (p *Proxy) Close() error {
	err := p.ln.Close()
	p.Down()
	return err
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down, target := p.down, p.target
		if !down {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			_ = c.Close()
			continue
		}
		go p.serve(c, target)
	}
}

func (p *Proxy) serve(c net.Conn, target string) {
	defer p.forget(c)
	p.gate()
	b, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	p.mu.Lock()
	if p.down {
		p.mu.Unlock()
		_ = b.Close()
		return
	}
	p.conns[b] = struct{}{}
	p.mu.Unlock()
	defer p.forget(b)
	done := make(chan struct{}, 2)
	go func() { p.copy(b, c); done <- struct{}{} }()
	go func() { p.copy(c, b); done <- struct{}{} }()
	<-done
}

// copy forwards src to dst, holding each chunk while the proxy stalls.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.gate()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// gate waits while the proxy stalls.
func (p *Proxy) gate() {
	p.mu.Lock()
	resume := p.resume
	p.mu.Unlock()
	<-resume
}

func (p *Proxy) forget(c net.Conn) {
	_ = c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}
