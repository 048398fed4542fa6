// Package kafka is Samsa's Kafka wire-protocol server: framing and
// request headers, one handler per API key (files named NN_api.go, each
// opening with the versions it supports), the classic consumer-group
// coordinator, and the mapping of Samsa's errors to Kafka's codes
// (errors.go). Request and response bodies are encoded with franz-go's
// kmsg, except Fetch responses, which are written as encoded pieces
// interleaved with segment sections so that records reach the socket by
// sendfile without being copied or decoded.
//
// A connection reads requests ahead and handles them concurrently; a
// writer sends the responses in request order, as clients require.
// Produce requests are proposed in request order before they wait, so
// pipelined batches of one idempotent producer never overtake each other.
package kafka
