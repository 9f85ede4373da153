package nomis

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func finished(b *batchAck) bool {
	select {
	case <-b.finished:
		return true
	default:
		return false
	}
}

func TestBatchAck(t *testing.T) {
	t.Parallel()
	t.Run("finishes when sealed and every record answered", func(t *testing.T) {
		t.Parallel()
		b := newBatchAck()
		b.add()
		b.add()
		b.done(nil)
		require.False(t, finished(b), "not sealed")
		b.seal()
		require.False(t, finished(b), "one record pending")
		b.done(nil)
		require.True(t, finished(b))
		require.NoError(t, b.result())
	})
	t.Run("answers before the seal", func(t *testing.T) {
		t.Parallel()
		b := newBatchAck()
		b.add()
		b.done(nil)
		require.False(t, finished(b))
		b.seal()
		require.True(t, finished(b))
	})
	t.Run("empty batch", func(t *testing.T) {
		t.Parallel()
		b := newBatchAck()
		b.seal()
		require.True(t, finished(b))
	})
	t.Run("keeps the first error", func(t *testing.T) {
		t.Parallel()
		first, second := errors.New("first"), errors.New("second")
		b := newBatchAck()
		b.add()
		b.add()
		b.add()
		b.seal()
		b.done(first)
		require.ErrorIs(t, b.result(), first, "known before the batch finishes")
		b.done(second)
		b.done(nil)
		require.True(t, finished(b))
		require.ErrorIs(t, b.result(), first)
	})
}
