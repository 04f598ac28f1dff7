package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"log/slog"
	"net"
	"os"
	"time"
)

// sipTLSFlags registers the flags of SIP over TLS (sipTransport "tls"). The
// peer's certificate must name the host dialled (sipgo's server name).
func (c *config) sipTLSFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.SIPTLS, "sip-tls", "", "SIP over TLS listen address, e.g. :5061 (needs -sip-tls-cert and -sip-tls-key; empty: outgoing TLS only, the peer's in-dialog requests have no TLS port to come back to)")
	fs.StringVar(&c.SIPTLSCert, "sip-tls-cert", "", "PEM certificate file of -sip-tls, also the client certificate when a SIP peer asks for one (mutual TLS)")
	fs.StringVar(&c.SIPTLSKey, "sip-tls-key", "", "PEM private key file of -sip-tls-cert")
	fs.StringVar(&c.SIPTLSCA, "sip-tls-ca", "", "PEM file of the CAs that SIP peers' certificates must chain to (default: the system's roots)")
	fs.BoolVar(&c.SIPTLSInsecure, "sip-tls-insecure", false, "accept SIP peers' TLS certificates unverified (labs only: anyone on the path can read and change the calls)")
}

// checkSIPTLS validates the -sip-tls flags (faults go to add), sets c.sipTLS.
func (c *config) checkSIPTLS(add func(format string, args ...any)) {
	if _, _, err := net.SplitHostPort(c.SIPTLS); c.SIPTLS != "" && err != nil {
		add("-sip-tls %q: %v", c.SIPTLS, err)
	}
	if c.SIPTLSCA != "" && c.SIPTLSInsecure {
		add("-sip-tls-ca and -sip-tls-insecure: give one")
	}
	c.sipTLS = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: c.SIPTLSInsecure}
	switch cert, err := tls.LoadX509KeyPair(c.SIPTLSCert, c.SIPTLSKey); {
	case (c.SIPTLSCert == "") != (c.SIPTLSKey == ""):
		add("-sip-tls-cert and -sip-tls-key go together")
	case c.SIPTLSCert == "" && c.SIPTLS != "":
		add("-sip-tls needs -sip-tls-cert and -sip-tls-key (the listener's certificate)")
	case c.SIPTLSCert == "":
	case err != nil: // it names the file or the fault, never the key
		add("-sip-tls-cert, -sip-tls-key: %v", err)
	case cert.Leaf != nil && time.Now().After(cert.Leaf.NotAfter):
		add("-sip-tls-cert %q expired on %s", c.SIPTLSCert, cert.Leaf.NotAfter.UTC().Format(time.DateOnly))
	default:
		// Sent whatever CAs the peer names; Certificates makes a listener.
		c.sipTLS.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
		if c.SIPTLS != "" {
			c.sipTLS.Certificates = []tls.Certificate{cert}
		}
	}
	if b, err := os.ReadFile(c.SIPTLSCA); c.SIPTLSCA != "" && err != nil {
		add("-sip-tls-ca: %v", err)
	} else if pool := x509.NewCertPool(); c.SIPTLSCA != "" && !pool.AppendCertsFromPEM(b) {
		add("-sip-tls-ca %q: no PEM certificate in it", c.SIPTLSCA)
	} else if c.SIPTLSCA != "" {
		c.sipTLS.RootCAs = pool
	}
}

// logSIPTLS says how SIP peers are verified over TLS, loudly when not, and
// the listener's port (the user agent's tlsPort; without -sip-tls, none).
func logSIPTLS(log *slog.Logger, c config, tlsPort int) {
	if c.SIPTLSInsecure {
		log.Warn("-sip-tls-insecure: certificates of SIP peers over TLS are NOT verified: anyone on the path can impersonate a peer, listen to and change the calls (labs only)")
	}
	log.Info("SIP over TLS", "listen-port", map[bool]int{true: tlsPort}[c.SIPTLS != ""], "ca", c.SIPTLSCA, "insecure", c.SIPTLSInsecure, "client-cert", c.SIPTLSCert != "")
}
