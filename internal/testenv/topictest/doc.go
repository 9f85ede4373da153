// Package topictest reads and decodes the records of Kafka topics in tests.
//
// A Reader reads topics from the start with a fresh client (no consumer
// group) and decodes each record's key and value with schemas.Codec over a
// schema registry client, into a Record. Until reads until a number of
// records has arrived or a timeout passes; ToEnds reads every partition of a
// topic up to given end offsets and returns the records in partition order.
// Offsets and EndOffsets list where topics start and end, to know how many
// records to wait for.
package topictest
