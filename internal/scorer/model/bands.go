package model

// Band names. Unknown is a state of its own: no signals to judge, which is
// not healthy.
const (
	Healthy  = "healthy"
	Degraded = "degraded"
	Critical = "critical"
	Unknown  = "unknown"
)

var bandRank = map[string]int{Critical: 0, Degraded: 1, Healthy: 2}

// Band places a score in a band. With a previous band, the score must pass
// a border by the hysteresis to leave it, so scores near a border do not flap.
func Band(score float64, prev string, b Bands) string {
	raw := rawBand(score, b)
	if _, known := bandRank[prev]; !known || raw == prev {
		return raw
	}
	if bandRank[raw] > bandRank[prev] {
		// Improving: the score must clear the border by the hysteresis.
		if cand := rawBand(score-b.Hysteresis, b); bandRank[cand] > bandRank[prev] {
			return cand
		}
		return prev
	}
	// Worsening: the score must fall the hysteresis below the border.
	if cand := rawBand(score+b.Hysteresis, b); bandRank[cand] < bandRank[prev] {
		return cand
	}
	return prev
}

// AtMost returns the worse of a band and a cap ("" caps nothing; Unknown
// stays Unknown).
func AtMost(band, limit string) string {
	if band == Unknown || limit == "" || limit == Unknown {
		return band
	}
	if bandRank[limit] < bandRank[band] {
		return limit
	}
	return band
}

// Worse reports whether band a is worse than band b (unknown is neither).
func Worse(a, b string) bool {
	ra, oka := bandRank[a]
	rb, okb := bandRank[b]
	return oka && okb && ra < rb
}

func rawBand(score float64, b Bands) string {
	switch {
	case score >= b.Healthy:
		return Healthy
	case score >= b.Degraded:
		return Degraded
	}
	return Critical
}
