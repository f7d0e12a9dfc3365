// Package events is what a domain pipeline imports to publish to meshpulse:
// the typed events of the four inbound families and the ScoreChanged alert,
// their Validate methods, canonical URNs, Avro single-object encoding and
// decoding against the schemas embedded from schemas/, and a Producer that
// picks topic and key.
//
// It must not know about ClickHouse, ownership policy or anything else the
// ingestor decides: it describes what a well-formed event is, not whether a
// given emitter may send it.
package events
