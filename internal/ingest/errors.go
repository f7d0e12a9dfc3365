package ingest

import (
	"context"
	"errors"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshpulse/meshpulse/internal/store"
)

// Every error the ingestor meets is one of three kinds, and each kind has
// one treatment:
//
//   - poison: this record can never be stored (it cannot be decoded, is not
//     allowed, or ClickHouse rejects its data). It goes to the dead-letter
//     topic and processing goes on; it is never retried.
//   - outage: something this replica depends on is down or busy (ClickHouse,
//     a broker, the schema registry). It is retried with backoff for as long
//     as it takes; the records behind it are never committed meanwhile.
//   - membership: the group moved on without this replica (its generation
//     is stale). What it buffered is dropped uncommitted, the partitions'
//     owner reads it again, and the client rejoins.

// clickhouseDataErrors are server error codes that an insert only gets for
// the data it carries: retrying the same rows cannot succeed.
var clickhouseDataErrors = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	38:  true, // CANNOT_PARSE_DATE
	41:  true, // CANNOT_PARSE_DATETIME
	43:  true, // ILLEGAL_TYPE_OF_ARGUMENT
	53:  true, // TYPE_MISMATCH
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	131: true, // TOO_LARGE_STRING_SIZE
	321: true, // VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
}

// insertDataError reports whether an insert error is about the rows
// themselves (so a smaller batch may succeed), as opposed to an outage.
// Client-side append errors (a value the column type cannot hold) are data
// errors too.
func insertDataError(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var exc *clickhouse.Exception
	if errors.As(err, &exc) {
		if exc.Code == 252 { // TOO_MANY_PARTS: merges behind, or too many partitions in one block
			return strings.Contains(exc.Message, "partitions for single INSERT")
		}
		return clickhouseDataErrors[exc.Code]
	}
	return errors.Is(err, store.ErrAppend)
}

// membershipError reports whether a commit failed because this replica is no
// longer the member (or generation) the group knows.
func membershipError(err error) bool {
	return errors.Is(err, kerr.UnknownMemberID) || errors.Is(err, kerr.IllegalGeneration) ||
		errors.Is(err, kerr.RebalanceInProgress) || errors.Is(err, kerr.FencedInstanceID) ||
		errors.Is(err, kerr.StaleMemberEpoch) || errors.Is(err, kerr.FencedMemberEpoch)
}

// tooLarge reports whether a produce failed for the record's size.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) ||
		errors.Is(err, kerr.RecordListTooLarge)
}

// authorizationError reports an ACL refusal: configuration, not poison.
func authorizationError(err error) bool {
	return errors.Is(err, kerr.TopicAuthorizationFailed) || errors.Is(err, kerr.GroupAuthorizationFailed) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed) || errors.Is(err, kerr.TransactionalIDAuthorizationFailed)
}
