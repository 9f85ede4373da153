// Package repocheck holds tests about the repository's user-facing files that
// no other package owns: docker-compose.yml (parsed, never run here: CI has no
// Docker engine), the Dockerfile, README.md and CHANGELOG.md.
package repocheck
