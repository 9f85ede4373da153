// Package srtest gives a test a fake schema registry (franz-go's srfake),
// closed when the test ends, and a client of it.
package srtest

import (
	"testing"

	"github.com/twmb/franz-go/pkg/sr"
	"github.com/twmb/franz-go/pkg/sr/srfake"
)

// New starts a fake registry for tb and returns it with a client of it.
func New(tb testing.TB) (*srfake.Registry, *sr.Client) {
	tb.Helper()
	reg := srfake.New()
	tb.Cleanup(reg.Close)
	cl, err := sr.NewClient(sr.URLs(reg.URL()))
	if err != nil {
		tb.Fatalf("schema registry client: %v", err)
	}
	return reg, cl
}
