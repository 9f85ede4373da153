//go:build broker

package kafkatest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
)

func TestMain(m *testing.M) { Main(m) }

func TestReal(t *testing.T) {
	first := Real(t)
	require.Equal(t, first, Real(t), "Real must share one broker per test binary")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	brokers, err := kadm.NewClient(Client(t, first)).ListBrokers(ctx)
	require.NoError(t, err)
	require.Len(t, brokers, 1)
}
