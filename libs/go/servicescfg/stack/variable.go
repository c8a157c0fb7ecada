package stack

import "regexp"

// Matcher compiles the variable's pattern anchored at both ends, as every
// check of a value uses it: a value must match it whole. It is nil when the
// variable has no pattern; an error words the pattern as written.
func (v *Variable) Matcher() (*regexp.Regexp, error) {
	if v.Pattern == "" {
		return nil, nil
	}
	if _, err := regexp.Compile(v.Pattern); err != nil {
		return nil, err
	}
	return regexp.Compile("^(?:" + v.Pattern + ")$")
}
