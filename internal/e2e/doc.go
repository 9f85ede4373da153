// Package e2e holds the end-to-end suite of alertsync (issue 9): each test
// runs the five pipeline components – `capture dps`, `capture nomis`,
// `transform`, `apply dps` and `apply nomis` – as separate OS processes of
// the real binary against the real Kafka broker of ALERTSYNC_TEST_KAFKA, a
// fake schema registry served over HTTP, and PostgreSQL databases holding
// DPS and the NOMIS stand-in.
//
// The tests carry the build tag `broker` and run with
//
//	ALERTSYNC_TEST_KAFKA=host:port go test -tags broker ./internal/e2e
//
// (docs/testing-e2e.md says how to start a broker). Without the variable
// they fail and say how to set it; they never skip.
//
// Contract of the suite: users change alerts the way NOMIS screens and the
// DPS service do, in SQL sessions marked as such; a test waits until both
// stores agree on every mapped field, counts the commands and outcomes on
// the topics against the user changes (exactly one command in the opposite
// direction per change, one outcome per command, nothing sent back), checks
// that nothing moves once the pipeline is quiet, and on any failure prints
// the last log lines of every process. This file holds no code: the suite
// is test-only.
package e2e
