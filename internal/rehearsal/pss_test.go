package rehearsal

import "testing"

func TestKindOf(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"/usr/lib/chromium/chromium", "--headless=new", "about:blank"}, "browser"},
		{[]string{"/usr/lib/chromium/chromium", "--type=gpu-process", "--no-sandbox"}, "gpu-process"},
		{[]string{"/usr/lib/chromium/chromium", "--type=renderer", "--top-chrome-webui"}, "renderer"},
		{[]string{"/usr/lib/chromium/chromium", "--type=utility", "--utility-sub-type=network.mojom.NetworkService", "--lang=en-US"}, "utility:NetworkService"},
		{[]string{"/usr/lib/chromium/chromium", "--type=zygote"}, "zygote"},
		{[]string{"/usr/lib/chromium/chrome_crashpad_handler", "--monitor-self"}, "crashpad"},
		{[]string{"/usr/bin/cat"}, "cat"},
	} {
		if got := kindOf(c.args); got != c.want {
			t.Errorf("kindOf(%q) = %q, want %q", c.args, got, c.want)
		}
	}
}
