package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Interop is where the reference implementations live: the jars of Apache
// Avro Java and openlineage-java, and a Python with fastavro, avro,
// confluent-kafka, openlineage-python and dbt (scripts/install-interop).
type Interop struct {
	JavaLibs string // directory of jars
	Python   string // the virtualenv's python
}

var (
	interopOnce sync.Once
	interop     Interop
	interopErr  string
)

// InteropTools installs (once, cached) and returns the reference
// implementations. Unavailable tools skip the test, or fail it under CI=true.
func InteropTools(t testing.TB) Interop {
	t.Helper()
	interopOnce.Do(func() {
		script := filepath.Join(ModuleRoot(t), "scripts", "install-interop")
		var stderr bytes.Buffer
		cmd := exec.Command(script)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			interopErr = "scripts/install-interop: " + err.Error() + "\n" + stderr.String()
			return
		}
		for _, line := range strings.Split(string(out), "\n") {
			if v, ok := strings.CutPrefix(line, "INTEROP_JAVA_LIBS="); ok {
				interop.JavaLibs = v
			}
			if v, ok := strings.CutPrefix(line, "INTEROP_PYTHON="); ok {
				interop.Python = v
			}
		}
	})
	if interopErr != "" {
		Unavailable(t, "%s", interopErr)
	}
	for _, tool := range []string{"java", "javac", "kcat"} {
		if _, err := exec.LookPath(tool); err != nil {
			Unavailable(t, "%s not found: %v", tool, err)
		}
	}
	return interop
}

// CompileJava compiles the given sources against the reference jars into
// a directory of its own and returns the classpath to run them with.
func (i Interop) CompileJava(t testing.TB, sources ...string) string {
	t.Helper()
	out := t.TempDir()
	cp := filepath.Join(i.JavaLibs, "*")
	args := append([]string{"-nowarn", "-cp", cp, "-d", out}, sources...)
	if b, err := exec.Command("javac", args...).CombinedOutput(); err != nil {
		t.Fatalf("javac %v: %v\n%s", sources, err, b)
	}
	return out + string(os.PathListSeparator) + cp
}

// Run runs a command and fails the test with its output if it fails.
func Run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return out.String()
}
