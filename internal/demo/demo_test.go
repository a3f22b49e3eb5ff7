package demo

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestDemoRunsEndToEnd(t *testing.T) {
	var out bytes.Buffer
	if err := Run(context.Background(), &out); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	for _, want := range []string{"installed the pgq schema", "event 1 order.created", "event 3 order.shipped",
		"printer | 0", "cluster is being removed"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q:\n%s", want, out.String())
		}
	}
}
