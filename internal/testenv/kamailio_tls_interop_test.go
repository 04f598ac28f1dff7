//go:build interop

package testenv_test

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/sipstream/sipstream/internal/testenv"
)

// kamailioOptions sends an OPTIONS over TLS to kamailio with cfg and
// returns the status line of the answer.
func kamailioOptions(k *testenv.Kamailio, cfg *tls.Config) (string, error) {
	c, err := tls.Dial("tcp", k.TLSAddr, cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	local := c.LocalAddr().String()
	req := fmt.Sprintf("OPTIONS sip:nobody@%[1]s;transport=tls SIP/2.0\r\n"+
		"Via: SIP/2.0/TLS %[2]s;branch=z9hG4bK-tls-test;rport\r\n"+
		"Max-Forwards: 70\r\nFrom: <sip:test@127.0.0.1>;tag=1\r\nTo: <sip:nobody@%[1]s>\r\n"+
		"Call-ID: tls-test@127.0.0.1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", k.TLSAddr, local)
	if _, err := c.Write([]byte(req)); err != nil {
		return "", err
	}
	return textproto.NewReader(bufio.NewReader(c)).ReadLine()
}

// TestInteropKamailioTLS: kamailio's TLS listener serves its certificate
// (verified against TLSCert.Pool) and answers SIP over it; kamailio logs
// the request as tls. With RequireClientCert, a client without a
// certificate is refused and one with a certificate signed by ClientCA is
// served.
func TestInteropKamailioTLS(t *testing.T) {
	k := testenv.StartKamailio(t, testenv.KamailioConfig{TLS: &testenv.KamailioTLS{}})
	line, err := kamailioOptions(k, &tls.Config{RootCAs: k.TLSCert.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "SIP/2.0 404") {
		t.Fatalf("kamailio answered %q, want 404 for an unknown user", line)
	}
	if !strings.Contains(k.Log(), "req OPTIONS sip:nobody@"+k.TLSAddr+";transport=tls from 127.0.0.1:") || !strings.Contains(k.Log(), "/tls") {
		t.Fatalf("kamailio did not log the OPTIONS over tls:\n%s", k.Log())
	}

	client := testenv.SelfSigned(t, "client.test")
	mk := testenv.StartKamailio(t, testenv.KamailioConfig{TLS: &testenv.KamailioTLS{ClientCA: client.CertFile, RequireClientCert: true}})
	if line, err := kamailioOptions(mk, &tls.Config{RootCAs: mk.TLSCert.Pool, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatalf("kamailio answered a client without a certificate: %q", line)
	} else {
		t.Logf("no client certificate: %v", err)
	}
	other := testenv.SelfSigned(t, "other.test")
	if line, err := kamailioOptions(mk, &tls.Config{RootCAs: mk.TLSCert.Pool, Certificates: []tls.Certificate{other.Certificate}, MinVersion: tls.VersionTLS12}); err == nil {
		t.Fatalf("kamailio answered a client whose certificate ClientCA did not sign: %q", line)
	}
	line, err = kamailioOptions(mk, &tls.Config{RootCAs: mk.TLSCert.Pool, Certificates: []tls.Certificate{client.Certificate}, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("with the client certificate: %v\n%s", err, mk.Log())
	}
	if !strings.HasPrefix(line, "SIP/2.0 404") {
		t.Fatalf("kamailio answered %q, want 404", line)
	}
}
