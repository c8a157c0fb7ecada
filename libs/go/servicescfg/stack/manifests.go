package stack

import "path/filepath"

// Manifests expands a manifest pattern like Glob, leaving out the stack file
// itself: services.yaml is never a manifest, even where "**/*.yaml" matches it.
func (s *Stack) Manifests(pattern string) ([]string, error) {
	files, err := s.Glob(pattern)
	if err != nil {
		return nil, err
	}
	self := filepath.Base(s.Path)
	out := files[:0:0]
	for _, f := range files {
		if f != self {
			out = append(out, f)
		}
	}
	return out, nil
}
