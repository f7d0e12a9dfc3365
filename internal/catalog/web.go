package catalog

import (
	"embed"
	"io/fs"
	"net/http"
)

// The pages: index.html, app.js, style.css, and the vendored libraries in
// web/vendor (uPlot, Cytoscape.js, cytoscape-dagre; versions and licences
// in web/vendor/VERSIONS). Nothing is fetched from a CDN; `make web-vendor`
// refreshes the libraries from npm, and go build never needs npm.
//
//go:embed web
var webFS embed.FS

func webHandler() http.Handler {
	sub, _ := fs.Sub(webFS, "web")
	files := http.FileServer(http.FS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" || r.URL.Path == "/index.html" {
			w.Header().Set("Cache-Control", "no-cache")
		} else {
			w.Header().Set("Cache-Control", "public, max-age=300")
		}
		files.ServeHTTP(w, r)
	})
}
