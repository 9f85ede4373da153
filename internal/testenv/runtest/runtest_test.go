package runtest

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestStartHalt(t *testing.T) {
	t.Parallel()
	want := errors.New("stopped on purpose")
	r := Start(t, func(ctx context.Context) error { <-ctx.Done(); return want })
	select {
	case <-r.Done():
		t.Fatal("Run returned before Halt")
	default:
	}
	require.ErrorIs(t, r.Halt(t), want)
	require.ErrorIs(t, r.Err(), want)
	require.ErrorIs(t, r.Halt(t), want, "a second Halt returns the same")
}
