package devenv

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"
)

// demo.env must survive any value through a shell's source.
func TestDemoEnvQuoting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "demo.env")
	env := map[string]string{}
	for i, k := range EnvOrder {
		env[k] = fmt.Sprintf("v%d it's $HOME `date` \\ \"q\" ;|&", i)
	}
	if err := WriteEnvFile(path, env); err != nil {
		t.Fatal(err)
	}
	for _, k := range EnvOrder {
		out, err := exec.Command("sh", "-c", ". "+ShellQuote(path)+` && printf '%s' "$`+k+`"`).Output()
		if err != nil || string(out) != env[k] {
			t.Errorf("%s: sourced %q (%v), want %q", k, out, err, env[k])
		}
	}
}
