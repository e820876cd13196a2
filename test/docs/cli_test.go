package docs

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// cli is what the gatehouse binary says about itself: its commands (in
// `gatehouse help` order) and each command's flags with their defaults,
// as `gatehouse <command> -h` prints them.
type cli struct {
	commands []string
	flags    map[string]map[string]flagInfo
}

type flagInfo struct {
	def    string // as -h shows it after "(default ", quotes removed
	hasDef bool
}

var (
	helpCommand = regexp.MustCompile(`^  ([a-z][a-z-]*)\s{2,}\S`)
	helpFlag    = regexp.MustCompile(`^  -([A-Za-z0-9][\w.-]*)`)
	helpDefault = regexp.MustCompile(`\(default (.*)\)$`)
)

// loadCLI builds cmd/gatehouse into dir and asks it. The environment is
// pinned so that defaults read from it print the same on every machine:
// HOME is the literal "$HOME", and $GATEHOUSE_IMAGE is unset. It runs in
// dir: controller-runtime's envtest, which gatehouse dev links, makes
// $HOME/.cache/kubebuilder-envtest in its init, relative to the working
// directory here, and that must not land in the source tree.
func loadCLI(root, dir string) (*cli, error) {
	bin := filepath.Join(dir, "gatehouse")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gatehouse")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./cmd/gatehouse: %v\n%s", err, out)
	}
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if k != "HOME" && k != "XDG_CACHE_HOME" && !strings.HasPrefix(k, "GATEHOUSE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HOME=$HOME")
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env, cmd.Dir = env, dir
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		return out.String(), err
	}
	help, err := run("help")
	if err != nil {
		return nil, fmt.Errorf("gatehouse help: %v\n%s", err, help)
	}
	c := &cli{flags: map[string]map[string]flagInfo{}}
	for _, line := range strings.Split(help, "\n") {
		if m := helpCommand.FindStringSubmatch(line); m != nil {
			c.commands = append(c.commands, m[1])
		}
	}
	if len(c.commands) == 0 {
		return nil, fmt.Errorf("gatehouse help lists no commands:\n%s", help)
	}
	for _, name := range c.commands {
		out, err := run(name, "-h")
		if err != nil {
			return nil, fmt.Errorf("gatehouse %s -h: %v\n%s", name, err, out)
		}
		c.flags[name] = parseFlagHelp(out)
	}
	return c, nil
}

// parseFlagHelp reads Go's flag.PrintDefaults: "  -name type" and then
// the usage, indented by a tab, whose last line may end in "(default x)".
func parseFlagHelp(out string) map[string]flagInfo {
	flags := map[string]flagInfo{}
	name := ""
	for _, line := range strings.Split(out, "\n") {
		if m := helpFlag.FindStringSubmatch(line); m != nil {
			name = m[1]
			flags[name] = flagInfo{}
			continue
		}
		if name == "" || !strings.HasPrefix(line, "    \t") {
			continue
		}
		if m := helpDefault.FindStringSubmatch(line); m != nil {
			flags[name] = flagInfo{def: strings.Trim(m[1], `"`), hasDef: true}
		}
	}
	return flags
}

// has says whether command has flag name; -h and -help always work.
func (c *cli) has(command, name string) bool {
	if name == "h" || name == "help" {
		return true
	}
	_, ok := c.flags[command][name]
	return ok
}

func (c *cli) isCommand(name string) bool {
	for _, n := range c.commands {
		if n == name {
			return true
		}
	}
	return name == "help"
}

// anyHas says which command has flag name, if any.
func (c *cli) anyHas(name string) bool {
	for _, cmd := range c.commands {
		if c.has(cmd, name) {
			return true
		}
	}
	return false
}
