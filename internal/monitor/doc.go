// Package monitor is `alertsync monitor`: a live view of a running
// pipeline, read from its components' admin servers. Each round scrapes
// /status (every component's state, what it waits for, its position) and
// /metrics of every target at once, and shows per component its state,
// uptime and memory, what it handles per second, how far behind it is,
// the 99th percentile of freshness over the round, its DLQ entries and
// its error rate, from the difference between this round's scrape and the
// previous one.
//
// It reads only what the components serve: no database, no Kafka, no
// personal data (the admin endpoints carry none).
package monitor
