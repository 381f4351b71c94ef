package registry

import (
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    Config
		want string // substring of the error; "" for none
	}{
		{"https", Config{URL: "https://registry.example.com"}, ""},
		{"https port", Config{URL: "https://registry.example.com:5000/"}, ""},
		{"http port", Config{URL: "http://localhost:5000"}, ""},
		{"credentials", Config{URL: "https://r.example.com", Username: "u", Password: "p"}, ""},
		{"patterns", Config{URL: "https://r.example.com", Include: []string{"team/*", "app-[0-9]"}, Exclude: []string{"*/tmp"}}, ""},
		{"empty", Config{}, "URL is empty"},
		{"no scheme", Config{URL: "registry.example.com"}, "no scheme"},
		{"ftp", Config{URL: "ftp://r.example.com"}, `scheme "ftp"`},
		{"path", Config{URL: "https://r.example.com/v2"}, "no path"},
		{"query", Config{URL: "https://r.example.com?x=1"}, "no path, query"},
		{"no host", Config{URL: "https://"}, "no host"},
		{"userinfo", Config{URL: "https://u:hunter2@r.example.com"}, "Username and Password"},
		{"bad host", Config{URL: "https://bad_host!"}, "bad URL"},
		{"user only", Config{URL: "https://r.example.com", Username: "u"}, "both Username and Password"},
		{"bad include", Config{URL: "https://r.example.com", Include: []string{"team/["}}, `Include pattern "team/["`},
		{"bad exclude", Config{URL: "https://r.example.com", Exclude: []string{`a\`}}, "Exclude pattern"},
		{"empty pattern", Config{URL: "https://r.example.com", Include: []string{""}}, "empty pattern"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.c.Validate()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("Validate: %v, want an error containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "hunter2"):
				t.Errorf("Validate shows the password: %v", err)
			}
		})
	}
}

func TestConfigWants(t *testing.T) {
	for _, tc := range []struct {
		include, exclude []string
		repo             string
		want             bool
	}{
		{nil, nil, "anything/at/all", true},
		{[]string{"team/*"}, nil, "team/app", true},
		{[]string{"team/*"}, nil, "team/a/b", false},
		{[]string{"team/*"}, nil, "other/app", false},
		{[]string{"team/*", "base"}, nil, "base", true},
		{[]string{"team/*"}, []string{"team/tmp-*"}, "team/tmp-1", false},
		{nil, []string{"*-test"}, "app-test", false},
		{nil, []string{"*-test"}, "app", true},
		{[]string{"app"}, []string{"app"}, "app", false}, // exclude wins
		{[]string{"["}, nil, "[", false},                 // malformed matches nothing
	} {
		c := Config{Include: tc.include, Exclude: tc.exclude}
		if got := c.Wants(tc.repo); got != tc.want {
			t.Errorf("include %q exclude %q: Wants(%q) = %v, want %v", tc.include, tc.exclude, tc.repo, got, tc.want)
		}
	}
}

func TestConfigHost(t *testing.T) {
	for url, want := range map[string]string{
		"https://registry.example.com":       "registry.example.com",
		"https://Registry.Example.com:5000/": "registry.example.com:5000",
		"http://localhost:5000":              "localhost:5000",
		"http://[::1]:5000":                  "[::1]:5000",
		"://bad":                             "",
	} {
		if got := (Config{URL: url}).Host(); got != want {
			t.Errorf("Host of %q = %q, want %q", url, got, want)
		}
	}
	img := Image{Repository: "team/app", Tag: "1", Digest: "sha256:" + strings.Repeat("a", 64)}
	if got, want := img.Ref(Config{URL: "http://localhost:5000"}), "localhost:5000/team/app@sha256:"+strings.Repeat("a", 64); got != want {
		t.Errorf("Ref = %q, want %q", got, want)
	}
}
