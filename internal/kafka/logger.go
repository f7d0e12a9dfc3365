package kafka

import (
	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Logger routes franz-go's own logs (group joins, rebalances, broker
// errors) into a zerolog logger at the same level, as franz-go's
// plugin/kzerolog does; that module is not served by the Go module proxy
// the project's machines reach, and the adapter is a dozen lines.
func Logger(log zerolog.Logger) kgo.Opt {
	return kgo.WithLogger(kgoLogger{log: log.With().Str("component", "kafka-client").Logger()})
}

type kgoLogger struct{ log zerolog.Logger }

func (l kgoLogger) Level() kgo.LogLevel {
	switch l.log.GetLevel() {
	case zerolog.TraceLevel, zerolog.DebugLevel:
		return kgo.LogLevelDebug
	case zerolog.InfoLevel:
		return kgo.LogLevelInfo
	case zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case zerolog.Disabled:
		return kgo.LogLevelNone
	}
	return kgo.LogLevelError
}

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = l.log.Error()
	case kgo.LogLevelWarn:
		ev = l.log.Warn()
	case kgo.LogLevelInfo:
		ev = l.log.Info()
	default:
		ev = l.log.Debug()
	}
	ev.Fields(keyvals).Msg(msg)
}
