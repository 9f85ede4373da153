// Package broker runs a real single-node Apache Kafka broker for tests and
// local runs: one JVM in KRaft combined mode (process.roles=broker,controller,
// node.id=1) on loopback ports, started from the Kafka jars on Maven Central
// with the machine's Java (17 or newer).
//
// Jars are resolved once by Maven from the pom.xml embedded in this package
// into <cache>/kafka/<version>/libs, where <cache> is $ALERTSYNC_CACHE_DIR or
// .cache under the repository root; a marker file makes later runs, from any
// process, skip Maven (see Prepare).
//
// Contract:
//   - Start returns only when a Kafka client gets metadata from the broker,
//     or an error that ends with the tail of the broker's log; a failed Start
//     leaves no process and no temporary directory behind.
//   - The broker is sized for one machine: every replication factor and the
//     transaction log's min ISR are 1, the first consumer-group rebalance is
//     not delayed and topics are not auto-created (create them explicitly,
//     as the pipeline does).
//   - Restart keeps the address and the storage; Kill is a crash (SIGKILL)
//     that Restart recovers from; Stop is final and removes the temporary
//     directory (a directory given in Options.Dir is kept).
//   - On Linux the JVM is killed by the kernel if the Go process dies.
//   - The broker logs to Dir()/logs/server.log, never to the caller's output.
package broker
