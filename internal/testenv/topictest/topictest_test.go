package topictest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/alertsync/alertsync/internal/testenv/kafkatest"
)

func TestMain(m *testing.M) { kafkatest.Main(m) }

func TestOffsets(t *testing.T) {
	brokers := kafkatest.Brokers(t)
	topic := kafkatest.Topic(t, "topictest")
	cl := kafkatest.Client(t, brokers, kgo.DefaultProduceTopic(topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := adm.CreateTopic(ctx, 2, 1, nil, topic)
	require.NoError(t, err)
	for _, p := range []int32{0, 0, 0, 1} {
		require.NoError(t, cl.ProduceSync(ctx, &kgo.Record{Partition: p, Value: []byte("v")}).FirstErr())
	}

	require.Equal(t, map[int32]int64{0: 3, 1: 1}, EndOffsets(ctx, t, adm, topic))
	start, end := Offsets(t, brokers, topic)
	require.Equal(t, int64(0), start)
	require.Equal(t, int64(4), end)
}

func TestSum(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   map[int32]int64
		want int64
	}{
		{"none", nil, 0},
		{"some", map[int32]int64{0: 3, 1: 0, 2: 7}, 10},
	} {
		t.Run(tc.name, func(t *testing.T) { require.Equal(t, tc.want, Sum(tc.in)) })
	}
}

func TestAs(t *testing.T) {
	type own Record
	in := []Record{{Topic: "t", Partition: 1, Offset: 2, Key: map[string]any{"id": 1}}}
	out := As[own](in)
	require.Len(t, out, 1)
	require.Equal(t, own(in[0]), out[0])
}
