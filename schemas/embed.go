// Package schemas holds every Avro schema version meshpulse has ever released,
// embedded in the binary. Old producers keep sending old versions, so a file
// here is never edited or removed once released: a change is a new vN.avsc.
package schemas

import "embed"

// FS holds <family>/v<N>.avsc for every family.
//
//go:embed */*.avsc
var FS embed.FS
