package cli

import (
	"flag"
	"testing"
)

func TestParseEnvFallback(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"default", nil, nil, "d"},
		{"env", nil, map[string]string{"MESHPULSE_KAFKA_SASL_USER": "e"}, "e"},
		{"flag wins", []string{"-kafka-sasl-user", "f"}, map[string]string{"MESHPULSE_KAFKA_SASL_USER": "e"}, "f"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			v := fs.String("kafka-sasl-user", "d", "")
			if err := Parse(fs, tt.args); err != nil {
				t.Fatal(err)
			}
			if *v != tt.want {
				t.Fatalf("got %q, want %q", *v, tt.want)
			}
		})
	}
	t.Run("bad env value", func(t *testing.T) {
		t.Setenv("MESHPULSE_N", "many")
		fs := flag.NewFlagSet("x", flag.ContinueOnError)
		fs.Int("n", 1, "")
		if err := Parse(fs, nil); err == nil {
			t.Fatal("want an error for a non-integer env value")
		}
	})
}
