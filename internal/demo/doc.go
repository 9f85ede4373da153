// Package demo runs the whole alertsync pipeline in one process on embedded
// infrastructure, for a first look and for end-to-end tests of the binary
// (alertsync demo).
//
// Data flow: Run prepares, in order, the data directory, an embedded Kafka
// broker (kfake with disk persistence) on loopback, an embedded schema
// registry (srfake whose schemas are kept in a file and re-seeded with the
// same ids), two local PostgreSQL clusters (DPS and the NOMIS stand-in, from
// internal/pgcluster), their schemas and reference data and, on the first
// start only, sample prisoners in NOMIS. It then runs capture dps, transform,
// apply dps, apply nomis and capture nomis (whose initial load migrates the
// sample alerts into DPS) in-process, each reporting to one shared admin
// server, and writes <data-dir>/demo.env.
//
// Contract:
//
//   - Every piece of state lives under Config.DataDir; a second Run on the
//     same directory resumes where the previous one stopped, also after the
//     process was SIGKILLed: the components' own guarantees (positions
//     confirmed after Kafka acknowledged, Kafka transactions, offsets stored
//     with the writes) hold because the broker, registry and databases are
//     durable across restarts. Config.Reset removes the directory first.
//   - Run returns when ctx is cancelled (nil: a clean stop) or when a
//     component fails; it stops the components, then the broker, registry and
//     clusters, in reverse order.
//   - Progress goes to Deps.Out as short human-readable lines; logs go to
//     Deps.Logger and never carry alert descriptions.
//   - The admin server (Config.Admin.Listen) serves an HTML status page at /
//     (state, position, records in and out, freshness and last error of every
//     component, refreshed by itself), /status, /metrics, /healthz and
//     /readyz (200 only while every component is running).
package demo
