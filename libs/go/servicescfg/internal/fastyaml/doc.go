// Package fastyaml holds the engine's fast paths through YAML, which carry
// its speed over helm: reading rendered manifests (Decode) the way kubectl
// reads them, and writing the small values of toYaml (Write) the way go-yaml
// writes them. Each handles the shapes manifests use and leaves the rest to
// go-yaml; the differential tests and fuzz targets beside them hold every
// value they take to the libraries kubectl and helm use.
package fastyaml
