package registry

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	dig1 = "sha256:fea8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7cf"
	dig2 = "sha256:bfa8895f450959fa676bcc1df0611ea93823a735a01205fd8622846041d0c7ce"
)

// envelope is shaped like what CNCF Distribution sends: a manifest push, the
// push of its config blob (ignored), a pull, a manifest delete by digest and
// a tag delete (both without media type), and a schema 1 manifest (ignored).
const realEnvelope = `{
  "events": [
    {
      "id": "320678d8-ca14-430f-8bb6-4ca139cd83f7",
      "timestamp": "2016-03-09T14:44:26.402973972-08:00",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "digest": "` + dig1 + `",
        "size": 708,
        "length": 708,
        "repository": "hello-world",
        "url": "http://192.168.100.227:5000/v2/hello-world/manifests/` + dig1 + `",
        "tag": "latest"
      },
      "request": {
        "id": "6df24a34-0959-4923-81ca-14f09767db19",
        "addr": "192.168.64.11:42961",
        "host": "192.168.100.227:5000",
        "method": "PUT",
        "useragent": "docker/24.0.7 go/go1.20.10"
      },
      "actor": {"name": "ci"},
      "source": {"addr": "xtal.local:5000", "instanceID": "a53db899-3b4b-4a62-a067-8dd013beaca4"}
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000001",
      "timestamp": "2016-03-09T14:44:26.3Z",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "digest": "` + dig2 + `",
        "size": 1470,
        "length": 1470,
        "repository": "hello-world",
        "url": "http://192.168.100.227:5000/v2/hello-world/blobs/` + dig2 + `"
      },
      "request": {}, "actor": {}, "source": {}
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000002",
      "timestamp": "2016-03-09T14:45:00Z",
      "action": "pull",
      "target": {
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": "` + dig2 + `",
        "repository": "team/app",
        "tag": "v1.2"
      }
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000003",
      "timestamp": "2016-03-09T14:46:00Z",
      "action": "delete",
      "target": {"digest": "` + dig1 + `", "repository": "hello-world"}
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000004",
      "timestamp": "2016-03-09T14:47:00Z",
      "action": "delete",
      "target": {"repository": "team/app", "tag": "old"}
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000005",
      "timestamp": "2016-03-09T14:48:00Z",
      "action": "delete",
      "target": {"digest": "` + dig2 + `", "repository": "team/app", "url": "http://r/v2/team/app/blobs/` + dig2 + `"}
    },
    {
      "id": "a1b2c3d4-0000-4000-8000-000000000006",
      "action": "push",
      "target": {
        "mediaType": "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "digest": "` + dig2 + `",
        "repository": "legacy"
      }
    }
  ]
}`

func TestParseEventsRealEnvelope(t *testing.T) {
	got, err := ParseEvents(strings.NewReader(realEnvelope), 0)
	if err != nil {
		t.Fatal(err)
	}
	ts := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	want := []Event{
		{ID: "320678d8-ca14-430f-8bb6-4ca139cd83f7", Action: "push", Repository: "hello-world", Tag: "latest", Digest: dig1,
			MediaType: "application/vnd.docker.distribution.manifest.v2+json", Time: ts("2016-03-09T14:44:26.402973972-08:00")},
		{ID: "a1b2c3d4-0000-4000-8000-000000000002", Action: "pull", Repository: "team/app", Tag: "v1.2", Digest: dig2,
			MediaType: "application/vnd.oci.image.index.v1+json", Time: ts("2016-03-09T14:45:00Z")},
		{ID: "a1b2c3d4-0000-4000-8000-000000000003", Action: "delete", Repository: "hello-world", Digest: dig1, Time: ts("2016-03-09T14:46:00Z")},
		{ID: "a1b2c3d4-0000-4000-8000-000000000004", Action: "delete", Repository: "team/app", Tag: "old", Time: ts("2016-03-09T14:47:00Z")},
	}
	if len(got) != len(want) {
		t.Fatalf("got %d events, want %d:\n%+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].Time.Equal(want[i].Time) {
			t.Errorf("event %d time %v, want %v", i, got[i].Time, want[i].Time)
		}
		got[i].Time, want[i].Time = time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Errorf("event %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	c := Config{URL: "http://localhost:5000"}
	if r := got[0].Ref(c); r != "localhost:5000/hello-world@"+dig1 {
		t.Errorf("Ref %q", r)
	}
	if r := got[3].Ref(c); r != "localhost:5000/team/app:old" {
		t.Errorf("tag delete Ref %q", r)
	}
}

func TestParseEvents(t *testing.T) {
	manifest := func(target string) string {
		return `{"events":[{"id":"e1","action":"push","target":{` + target + `}}]}`
	}
	const mt = `"mediaType":"application/vnd.oci.image.manifest.v1+json"`
	for _, tc := range []struct {
		name  string
		body  string
		limit int64
		n     int    // events wanted
		err   string // substring of the error wanted
	}{
		{"empty events", `{"events":[]}`, 0, 0, ""},
		{"oci manifest", manifest(mt + `,"digest":"` + dig1 + `","repository":"a/b"`), 0, 1, ""},
		{"sha512", manifest(mt + `,"digest":"sha512:` + strings.Repeat("ab", 64) + `","repository":"a"`), 0, 1, ""},
		{"blob only", manifest(`"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"nonsense","repository":""`), 0, 0, ""},
		{"unknown action", `{"events":[{"action":"replicate","target":{` + mt + `}}]}`, 0, 0, ""},
		{"empty body", ``, 0, 0, "empty body"},
		{"malformed JSON", `{"events":[`, 0, 0, "malformed JSON"},
		{"trailing garbage", `{"events":[]} {}`, 0, 0, "malformed JSON"},
		{"wrong type", `{"events":{}}`, 0, 0, "malformed JSON"},
		{"not an envelope", `{"event":[]}`, 0, 0, `no "events" array`},
		{"null events", `{"events":null}`, 0, 0, `no "events" array`},
		{"oversized", `{"events":[]}` + strings.Repeat(" ", 100), 50, 0, "larger than 50 bytes"},
		{"at limit", `{"events":[]}`, 13, 0, ""},
		{"empty repository", manifest(mt + `,"digest":"` + dig1 + `","repository":""`), 0, 0, `event 0 (id "e1"): empty repository`},
		{"bad repository", manifest(mt + `,"digest":"` + dig1 + `","repository":"../etc"`), 0, 0, `bad repository name "../etc"`},
		{"upper repository", manifest(mt + `,"digest":"` + dig1 + `","repository":"Team/App"`), 0, 0, "bad repository name"},
		{"no digest", manifest(mt + `,"repository":"a"`), 0, 0, "push of a: no digest"},
		{"digest no colon", manifest(mt + `,"digest":"fea8895f","repository":"a"`), 0, 0, "want algorithm:hex"},
		{"digest short", manifest(mt + `,"digest":"sha256:abc","repository":"a"`), 0, 0, "sha256 wants 64 lower-case hex digits"},
		{"digest upper", manifest(mt + `,"digest":"sha256:` + strings.Repeat("A", 64) + `","repository":"a"`), 0, 0, "lower-case hex"},
		{"digest algorithm", manifest(mt + `,"digest":"md5:` + strings.Repeat("a", 32) + `","repository":"a"`), 0, 0, `unsupported algorithm "md5"`},
		{"bad tag", manifest(mt + `,"digest":"` + dig1 + `","repository":"a","tag":"-x"`), 0, 0, `bad tag "-x"`},
		{"bad timestamp", `{"events":[{"action":"push","timestamp":"yesterday","target":{` + mt + `,"digest":"` + dig1 + `","repository":"a"}}]}`, 0, 0, `event 0: bad timestamp "yesterday"`},
		{"delete nothing", `{"events":[{"action":"delete","target":{"repository":"a"}}]}`, 0, 0, "delete of a: no digest"},
		{"second event bad, none applied", `{"events":[{"action":"push","target":{` + mt + `,"digest":"` + dig1 + `","repository":"a"}},{"action":"push","target":{` + mt + `,"digest":"sha256:zz","repository":"a"}}]}`, 0, 0, "event 1: bad digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseEvents(strings.NewReader(tc.body), tc.limit)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one containing %q", err, tc.err)
				}
				if got != nil {
					t.Errorf("events returned with an error: %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.n {
				t.Errorf("%d events, want %d: %+v", len(got), tc.n, got)
			}
		})
	}
}

func TestAuthenticate(t *testing.T) {
	for _, tc := range []struct {
		header, secret string
		want           bool
	}{
		{"Bearer s3cret", "s3cret", true},
		{"Token s3cret", "s3cret", true},
		{"bearer s3cret", "s3cret", true},
		{"  Bearer s3cret  ", "s3cret", true},
		{"Bearer s3cre", "s3cret", false},
		{"Bearer s3cret!", "s3cret", false},
		{"Bearer ", "s3cret", false},
		{"Basic czNjcmV0", "s3cret", false},
		{"s3cret", "s3cret", false},
		{"", "s3cret", false},
		{"Bearer ", "", false},
		{"", "", false},
		{"Bearer x", "", false},
	} {
		h := http.Header{}
		if tc.header != "" {
			h.Set("Authorization", tc.header)
		}
		if got := Authenticate(h, tc.secret); got != tc.want {
			t.Errorf("Authenticate(%q, %q) = %v, want %v", tc.header, tc.secret, got, tc.want)
		}
	}
}

func FuzzParseEvents(f *testing.F) {
	f.Add([]byte(realEnvelope), int64(0))
	f.Add([]byte(`{"events":[]}`), int64(0))
	f.Add([]byte(`{"events":[{"action":"delete","target":{"repository":"a","tag":"b"}}]}`), int64(0))
	f.Add([]byte(`{"events":[{"action":"push","target":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"`+dig1+`","repository":"a/b","tag":"1"}}]}`), int64(64))
	f.Add([]byte(`{"events":[{"action":"push","timestamp":"2024-01-01T00:00:00Z","target":{"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","digest":"sha256:zz","repository":"a"}}]}`), int64(0))
	f.Add([]byte(`{"events":null}`), int64(0))
	f.Fuzz(func(t *testing.T, body []byte, limit int64) {
		events, err := ParseEvents(strings.NewReader(string(body)), limit)
		if err != nil {
			if events != nil {
				t.Fatalf("events with an error: %+v", events)
			}
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		max := limit
		if max <= 0 {
			max = DefaultEventLimit
		}
		if int64(len(body)) > max {
			t.Fatalf("accepted %d bytes over a limit of %d", len(body), max)
		}
		for _, e := range events {
			if !validRepository(e.Repository) {
				t.Fatalf("bad repository returned: %+v", e)
			}
			switch e.Action {
			case ActionPush, ActionPull, ActionMount:
				if !manifestTypes[e.MediaType] || checkDigest(e.Digest) != nil {
					t.Fatalf("bad %s event returned: %+v", e.Action, e)
				}
			case ActionDelete:
				if e.Digest == "" && e.Tag == "" || e.Digest != "" && checkDigest(e.Digest) != nil {
					t.Fatalf("bad delete returned: %+v", e)
				}
			default:
				t.Fatalf("unknown action returned: %+v", e)
			}
			if e.Tag != "" && !tagRE.MatchString(e.Tag) {
				t.Fatalf("bad tag returned: %+v", e)
			}
		}
	})
}
