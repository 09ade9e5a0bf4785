package remotecache

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/sxb-build/sxb/internal/testenv"
)

// writeCA makes a CA and a server certificate for 127.0.0.1 signed by it.
func writeCA(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sxb test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	ca, cert, key = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644)
	os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644)
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)
	return ca, cert, key
}

func TestTLSWithCustomCA(t *testing.T) {
	ca, cert, key := writeCA(t, t.TempDir())
	srv := testenv.StartNginx(t, testenv.NginxOptions{TLSCert: cert, TLSKey: key})
	ctx := context.Background()
	k := strings.Repeat("77", 32)
	if _, err := newClient(t, srv.URL, Options{Retries: -1}).LookupAction(ctx, k); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("unknown CA accepted: %v", err)
	}
	c := newClient(t, srv.URL, Options{CAFile: ca})
	upload(t, c, k)
	if m, err := c.LookupAction(ctx, k); m == nil || err != nil {
		t.Fatalf("lookup over TLS: %v, %v", m, err)
	}
	if _, err := New(Options{URL: srv.URL, CAFile: key}); err == nil {
		t.Fatal("a CA file without certificates accepted")
	}
}

// zstdServer keeps blobs as bazel-remote's HTTP API describes: GET with
// "Accept-Encoding: zstd" answers zstd, a PUT with "Content-Encoding: zstd"
// and X-Digest-SizeBytes is decoded and checked against its key.
type zstdServer struct {
	mu         sync.Mutex
	blobs      map[string][]byte
	zstdPuts   int
	plainPuts  int
	badUploads []string
}

func (s *zstdServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Encoding") == "zstd" {
			s.zstdPuts++
			d, _ := zstd.NewReader(nil)
			dec, err := d.DecodeAll(body, nil)
			if err != nil || strconv.Itoa(len(dec)) != r.Header.Get("X-Digest-SizeBytes") {
				s.badUploads = append(s.badUploads, r.URL.Path)
				http.Error(w, "bad zstd upload", http.StatusBadRequest)
				return
			}
			body = dec
		} else {
			s.plainPuts++
		}
		if strings.Contains(r.URL.Path, "/cas/") {
			if sum := sha256.Sum256(body); !strings.HasSuffix(r.URL.Path, hex.EncodeToString(sum[:])) {
				s.badUploads = append(s.badUploads, r.URL.Path)
				http.Error(w, "digest mismatch", http.StatusBadRequest)
				return
			}
		}
		s.blobs[r.URL.Path] = body
	case http.MethodGet, http.MethodHead:
		b, ok := s.blobs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/cas/") && r.Header.Get("Accept-Encoding") == "zstd" {
			e, _ := zstd.NewWriter(nil)
			w.Header().Set("Content-Encoding", "zstd")
			w.Write(e.EncodeAll(b, nil))
			return
		}
		w.Write(b)
	}
}

func TestZstdOnlyWhereAdvertised(t *testing.T) {
	s := &zstdServer{blobs: map[string][]byte{}}
	hs := httptest.NewServer(s)
	defer hs.Close()
	ctx := context.Background()
	c := newClient(t, hs.URL, Options{})
	// Nothing said zstd yet: uploads go plain.
	upload(t, c, strings.Repeat("01", 32))
	if s.zstdPuts != 0 || s.plainPuts == 0 {
		t.Fatalf("before the server advertised zstd: %d zstd, %d plain uploads", s.zstdPuts, s.plainPuts)
	}
	m, err := c.LookupAction(ctx, strings.Repeat("01", 32))
	if err != nil || m == nil {
		t.Fatalf("lookup: %v %v", m, err)
	}
	if err := c.FetchOutputs(ctx, m, t.TempDir(), nil); err != nil {
		t.Fatalf("fetch of zstd answers: %v", err)
	}
	// The server answered zstd: from now on uploads are compressed, and
	// the server finds them intact.
	upload(t, c, strings.Repeat("02", 32))
	if s.zstdPuts == 0 || len(s.badUploads) > 0 {
		t.Fatalf("after the server advertised zstd: %d zstd uploads, bad: %v", s.zstdPuts, s.badUploads)
	}
	c2 := newClient(t, hs.URL, Options{Compression: "off"})
	m, err = c2.LookupAction(ctx, strings.Repeat("02", 32))
	if err != nil || m == nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := c2.FetchOutputs(ctx, m, dst, nil); err != nil {
		t.Fatal(err)
	}
	if b := readFile(t, filepath.Join(dst, "img.raw")); !bytes.Equal(b, bytes.Repeat([]byte("image"), 40000)) {
		t.Fatal("file fetched after a compressed upload differs")
	}
}

func TestServerErrorsAreRetriedThenUnavailable(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		if n == 1 {
			http.Error(w, "try later", http.StatusServiceUnavailable)
			return
		}
		http.NotFound(w, r)
	}))
	defer hs.Close()
	c := newClient(t, hs.URL, Options{})
	if m, err := c.LookupAction(context.Background(), strings.Repeat("03", 32)); m != nil || err != nil {
		t.Fatalf("after one 503 and a retry: %v %v", m, err)
	}
	hs.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	})
	if _, err := c.LookupAction(context.Background(), strings.Repeat("03", 32)); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a server that keeps failing: %v, want ErrUnavailable", err)
	}
}
