// Package fleet coordinates the agents of many hosts that run the same apps,
// through etcd v3 (sessions, leases, elections, transactions and watches).
//
// Words used here:
//
//   - member: one agent in the fleet ([Member], made by [Join]); it owns one
//     etcd session whose lease carries everything the host holds.
//   - poller: the member elected, per app, to poll the registry and publish
//     the chosen [Release]; the others watch it and poll nothing.
//   - plan: the rollout of one version of one app, fixed when the version is
//     first seen: its canary hosts and the rollout numbers.
//   - phase: where the rollout of a version stands ([Phase]).
//   - slot: a lease-bound key that lets a host deploy; at most max_parallel
//     hosts hold one per app, fleet-wide (a semaphore ordered by the keys'
//     create revision).
//   - outcome: a host's report that a version worked (healthy) or failed.
//   - bad: a version that failure_threshold hosts failed; nobody deploys it.
//
// The key layout, the rules and the failure table are in docs/fleet.md.
package fleet
