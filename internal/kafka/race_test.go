package kafka

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestEnsureTopicsLosesCreationRace makes EnsureTopics see the topic as
// missing and then find it created by someone else (TOPIC_ALREADY_EXISTS),
// deterministically: kfake answers the first metadata request that names
// the topic as if the topic did not exist yet.
func TestEnsureTopicsLosesCreationRace(t *testing.T) {
	for _, tc := range []struct {
		name       string
		partitions int32 // of the topic the other creator made
		mismatch   bool
	}{
		{"same partitions", 3, false},
		{"other partitions", 5, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const topic = "raced"
			c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(tc.partitions, topic))
			require.NoError(t, err)
			defer c.Close()
			host, portStr, err := net.SplitHostPort(c.ListenAddrs()[0])
			require.NoError(t, err)
			port, err := strconv.Atoi(portStr)
			require.NoError(t, err)

			var hidden atomic.Bool
			c.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
				mreq := req.(*kmsg.MetadataRequest)
				names := false
				for _, rt := range mreq.Topics {
					names = names || (rt.Topic != nil && *rt.Topic == topic)
				}
				if !names {
					return nil, nil, false
				}
				hidden.Store(true)
				resp := mreq.ResponseKind().(*kmsg.MetadataResponse)
				resp.Version = mreq.Version
				b := kmsg.NewMetadataResponseBroker()
				b.NodeID, b.Host, b.Port = 0, host, int32(port) //nolint:gosec // a TCP port fits int32
				resp.Brokers = append(resp.Brokers, b)
				resp.ControllerID = 0
				rt := kmsg.NewMetadataResponseTopic()
				rt.Topic = kmsg.StringPtr(topic)
				rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
				resp.Topics = append(resp.Topics, rt)
				return resp, nil, true
			})

			cl, err := NewClient(Config{Brokers: c.ListenAddrs()}, nil, nil)
			require.NoError(t, err)
			defer cl.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err = EnsureTopics(ctx, kadm.NewClient(cl), TopicSpec{Name: topic, Partitions: 3, ReplicationFactor: 1})
			require.True(t, hidden.Load(), "the control function never hid the topic")
			if !tc.mismatch {
				require.NoError(t, err)
				return
			}
			var pm *PartitionMismatchError
			require.ErrorAs(t, err, &pm)
			require.Equal(t, PartitionMismatchError{Topic: topic, Existing: 5, Configured: 3}, *pm)
		})
	}
}
