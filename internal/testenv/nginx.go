package testenv

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// NginxOptions vary the server NginxConf describes.
type NginxOptions struct {
	// ReadOnly refuses uploads (405), as a cache without dav_methods does.
	ReadOnly bool
	// Authorization, when set, is the only Authorization header accepted;
	// other requests get 401.
	Authorization string
	// TLSCert and TLSKey, when set, make the server speak https.
	TLSCert, TLSKey string
}

// NginxConf writes dir/nginx.conf: nginx serving root on 127.0.0.1:port
// with WebDAV PUT and DELETE (the HTTP remote cache protocol needs nothing
// more), unlimited request bodies, and logs and temporary files in dir. It
// runs in the foreground as one process of the invoking user. It returns
// the arguments to start it with.
func NginxConf(dir, root string, port int, o NginxOptions) ([]string, error) {
	listen, location := fmt.Sprint(port), "dav_methods PUT DELETE;\n\t\t\tcreate_full_put_path on;"
	if o.ReadOnly {
		location = ""
	}
	if o.Authorization != "" {
		location += fmt.Sprintf("\n\t\t\tif ($http_authorization != %q) { return 401; }", o.Authorization)
	}
	if o.TLSCert != "" {
		listen += fmt.Sprintf(" ssl;\n\t\tssl_certificate %s;\n\t\tssl_certificate_key %s", o.TLSCert, o.TLSKey)
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
worker_processes 1;
error_log %[1]s/error.log;
events { worker_connections 512; }
http {
	access_log %[1]s/access.log;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	server {
		listen 127.0.0.1:%[3]s;
		root %[2]s;
		client_max_body_size 0;
		location / {
			%[4]s
		}
	}
}
`, dir, root, listen, location)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return []string{"-p", dir, "-c", filepath.Join(dir, "nginx.conf")}, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort waits until something accepts connections on 127.0.0.1:port.
func WaitPort(port int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on port %d after %v: %w", port, limit, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Nginx is an nginx started by StartNginx.
type Nginx struct {
	// URL is http://127.0.0.1:<port>.
	URL string
	// Root is the directory served; Dir holds its configuration and logs.
	Root, Dir string
	cmd       *exec.Cmd
}

// StartNginx starts nginx with WebDAV serving a new directory on a free
// loopback port (see NginxConf) and stops it when the test ends. It fails
// the test when nginx is missing.
func StartNginx(t testing.TB, o NginxOptions) *Nginx {
	t.Helper()
	bin := NeedTool(t, "nginx")
	dir := t.TempDir()
	n := &Nginx{Root: filepath.Join(dir, "root"), Dir: dir}
	if err := os.Mkdir(n.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	args, err := NginxConf(dir, n.Root, port, o)
	if err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stderr = os.Stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	t.Cleanup(n.Stop)
	if err := WaitPort(port, 10*time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		t.Fatalf("nginx: %v\n%s", err, log)
	}
	n.URL = "http://127.0.0.1:" + strconv.Itoa(port)
	if o.TLSCert != "" {
		n.URL = "https://127.0.0.1:" + strconv.Itoa(port)
	}
	return n
}

// Stop stops nginx (the server is then down: connections are refused).
func (n *Nginx) Stop() {
	if n.cmd != nil && n.cmd.Process != nil {
		n.cmd.Process.Kill()
		n.cmd.Wait()
		n.cmd = nil
	}
}
