package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"
)

// TestLagWithoutRead: lag needs DESCRIBE on the groups and topics, and READ
// on a topic only to step past the transaction markers at a group's
// committed offsets. A user without READ gets the lag with the markers
// counted, and a warning saying so; a user with it gets the true lag. On a
// kfake cluster of its own with SASL and ACLs (the shared test clusters
// have neither).
func TestLagWithoutRead(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	describe := func(r kmsg.ACLResourceType) kfake.ACL {
		return kfake.ACL{Resource: r, Name: "*", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "admin-secret"),
		kfake.User("PLAIN", "ops", "ops-secret", describe(kmsg.ACLResourceTypeTopic), describe(kmsg.ACLResourceTypeGroup)))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()
	client := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...),
			kgo.SASL(plain.Auth{User: "admin", Pass: "admin-secret"}.AsMechanism())}, opts...)...)
		require.NoError(t, err)
		t.Cleanup(cl.Close)
		return cl
	}
	adm := kadm.NewClient(client())
	const prefix, group = "acl.", "acl-transform"
	src := prefix + "dps.public.alert"
	_, err = adm.CreateTopic(ctx, 2, 1, nil, src)
	require.NoError(t, err)

	// Four changes in one transaction, then the group's offsets committed
	// where a transactional consumer leaves them: at each partition's commit
	// marker, one short of the last stable offset.
	prod := client(kgo.TransactionalID("acl-capture"), kgo.ProducerLinger(0))
	require.NoError(t, prod.BeginTransaction())
	for i := range 4 {
		require.NoError(t, prod.ProduceSync(ctx, &kgo.Record{Topic: src, Key: []byte{byte(i)}, Value: []byte("change")}).FirstErr())
	}
	require.NoError(t, prod.EndTransaction(ctx, kgo.TryCommit))
	stable, err := adm.ListCommittedOffsets(ctx, src)
	require.NoError(t, err)
	commit := kadm.Offsets{}
	withRecords := 0
	stable.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			commit.AddOffset(src, o.Partition, o.Offset-1, -1)
			withRecords++
		}
	})
	require.Positive(t, withRecords)
	require.NoError(t, adm.CommitAllOffsets(ctx, group, commit))

	lagAs := func(user, pass string) (lagReport, string) {
		t.Helper()
		dir := t.TempDir()
		secret := filepath.Join(dir, "password")
		require.NoError(t, os.WriteFile(secret, []byte(pass), 0o600))
		conf := filepath.Join(dir, "lag.yaml")
		require.NoError(t, os.WriteFile(conf, []byte("kafka:\n  sasl:\n    mechanism: PLAIN\n    username: "+user+"\n    password_file: "+secret+"\n"), 0o600))
		out, errOut, err := run(t, "lag", "--config", conf, "--json", "--group", group, "--kafka.brokers="+brokers[0],
			"--topics.prefix="+prefix, "--transform.group="+group, "--log.level=warn")
		require.NoError(t, err, errOut)
		var rep lagReport
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		require.Len(t, rep.Groups, 1)
		return rep, errOut
	}

	rep, errOut := lagAs("admin", "admin-secret")
	require.Zero(t, rep.Groups[0].Lag, "with READ: the markers are passed")
	require.NotContains(t, errOut, "no permission")

	rep, errOut = lagAs("ops", "ops-secret")
	require.Equal(t, int64(withRecords), rep.Groups[0].Lag, "without READ: each partition's marker counted")
	require.Contains(t, errOut, "no permission to read the topics past the transaction markers")
}
