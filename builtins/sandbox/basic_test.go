package sandbox

import (
	"testing"
)

func TestRunsInTree(t *testing.T) {
	root := busyboxTree(t)
	out, _, err := sh(t, Options{Root: root}, "echo hi > /etc/x; ls -ln /etc; touch /usr/y; chown 5:6 /usr/y; ls -ln /usr; rm /bin/cat; mkdir /var/lib; ls -lnd /var/lib")
	if err != nil {
		t.Fatal(err)
	}
	t.Log(out)
}
