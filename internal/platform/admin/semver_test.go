package admin

import "testing"

func TestSemver(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"v1.2.3", "1.2.3"},
		{"1.2.3-rc.1", "1.2.3-rc.1"},
		{"dev", "0.0.0-dev"},
		{"v1.2.3-4-gabcdef+dirty", "1.2.3-4-gabcdef+dirty"},
		{"abc/def 7", "0.0.0-abc-def-7"},
		{"", "0.0.0-unknown"},
		{"!!!", "0.0.0-unknown"},
	} {
		if got := semver(c.in); got != c.want {
			t.Errorf("semver(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
