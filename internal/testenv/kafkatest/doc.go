// Package kafkatest gives tests a Kafka to talk to.
//
//   - Brokers(t) returns the brokers of ALERTSYNC_TEST_KAFKA when it is set
//     (`make test` points it at a real broker), otherwise those of an
//     in-process kfake cluster made for that test and closed by t.Cleanup.
//     Kind says which one a test binary uses, for suites to print.
//   - Real(t) always returns a real Apache Kafka broker: ALERTSYNC_TEST_KAFKA
//     when set, otherwise one broker started (package broker) on first use
//     and shared by the test binary. A package that calls Real must call
//     Main from its TestMain, which stops that broker after the tests.
//   - Topic(t, base) names a topic that no other test uses, since tests of
//     every package may share one real broker.
//
// Tests never skip for lack of Kafka: without a reachable broker they fail
// with a message saying how to get one.
package kafkatest
