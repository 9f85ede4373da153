// Package admin serves the admin HTTP endpoints of a long-running alertsync
// component: /metrics (the component's own Prometheus registry, never the
// global one), /healthz (liveness), /readyz (readiness) and /status (JSON).
//
// Components report their lifecycle through a *Component handle. /readyz is
// 200 only while every registered component is Running; /healthz is 200 unless
// a component has Failed, so an orchestrator restarts a process that cannot
// recover but only routes to (or waits for) one that is ready. The server owns
// its listener; Serve returns when its context is cancelled, after a graceful
// HTTP shutdown bounded by the timeout given to New.
package admin
