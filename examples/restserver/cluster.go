package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sipstream/sipstream/callmgr/cluster"
	"github.com/sipstream/sipstream/callmgr/wcsapi"
)

// clusterFlags are the clustering flags (issue 18): with -nats, this server
// is one node of a cluster sharing one REST API through NATS JetStream.
type clusterFlags struct {
	NATS, Creds, CA, Cert, Key, Name, URL string
	NodeID                                string
	TTL                                   time.Duration
	Replicas                              int
}

// clusterFlags registers the clustering flags.
func (c *config) clusterFlags(fs *flag.FlagSet) {
	cl := &c.Cluster
	fs.StringVar(&cl.NATS, "nats", "", "NATS server URL(s), comma separated (nats://host:4222, tls://host:4222; JetStream on): this server becomes one node of a cluster with one REST API (calls of every node in find/find_all, requests routed to the owner, a dead node's calls reported FAILED). Empty: a single server")
	fs.StringVar(&cl.Creds, "nats-creds", "", "NATS credentials file (JWT and NKey seed) for -nats")
	fs.StringVar(&cl.CA, "nats-ca", "", "PEM CA file to check the NATS server's certificate (-nats over TLS)")
	fs.StringVar(&cl.Cert, "nats-cert", "", "PEM client certificate for NATS (with -nats-key)")
	fs.StringVar(&cl.Key, "nats-key", "", "PEM client key for NATS (with -nats-cert)")
	fs.StringVar(&cl.NodeID, "node-id", "", "this node's id: the nodeId of call objects and events; with -nats each node needs its own (letters, digits, '-', '_'; default: the host name)")
	fs.StringVar(&cl.Name, "cluster-name", "sipstream", "the cluster's name: nodes with the same -nats and -cluster-name form one cluster (its JetStream buckets are sipstream_NAME_calls and sipstream_NAME_nodes)")
	fs.StringVar(&cl.URL, "cluster-url", "", "this node's HTTP base URL as the other nodes' clients reach it (http://10.0.0.5:8081): WebRTC and HLS viewers asking another node are redirected here (default: from -http and -public-ip)")
	fs.IntVar(&cl.Replicas, "cluster-replicas", 1, "replicas of the cluster's JetStream buckets: 1 for one nats-server, 3 for a JetStream cluster of three (losing one server loses nothing); set when the buckets are first made")
	fs.DurationVar(&cl.TTL, "cluster-ttl", 6*time.Second, "a node whose heartbeat is older than this is dead: another node reports its calls FAILED")
}

var idPattern = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// checkCluster checks the clustering flags.
func (c *config) checkCluster(add func(format string, args ...any)) {
	cl := &c.Cluster
	if cl.NodeID != "" && !idPattern.MatchString(cl.NodeID) {
		add("-node-id %q: use letters, digits, '-' and '_'", cl.NodeID)
	}
	if !idPattern.MatchString(cl.Name) {
		add("-cluster-name %q: use letters, digits, '-' and '_'", cl.Name)
	}
	if (cl.Cert == "") != (cl.Key == "") {
		add("-nats-cert and -nats-key go together")
	}
	if cl.NATS == "" {
		for _, f := range []string{"nats-creds", "nats-ca", "nats-cert", "cluster-url"} {
			if c.set[f] {
				add("-%s needs -nats", f)
			}
		}
		return
	}
	for _, u := range strings.Split(cl.NATS, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.Host == "" || !strings.Contains("nats tls ws wss", pu.Scheme) || pu.Scheme == "" {
			add("-nats: want nats://HOST:PORT or tls://HOST:PORT URLs, comma separated")
			break
		}
	}
	if cl.Replicas < 1 || cl.Replicas > 5 {
		add("-cluster-replicas %d: want 1 to 5", cl.Replicas)
	}
	if cl.TTL < time.Second {
		add("-cluster-ttl %v: at least 1s", cl.TTL)
	}
	if cl.URL != "" {
		if u, err := url.Parse(cl.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			add("-cluster-url %q: want http(s)://HOST:PORT", cl.URL)
		}
	}
}

// nodeID is -node-id, else the host name made an id.
func (c *config) nodeID() string {
	if c.Cluster.NodeID != "" {
		return c.Cluster.NodeID
	}
	h, _ := os.Hostname()
	return strings.Trim(regexp.MustCompile(`[^A-Za-z0-9_-]+`).ReplaceAllString(h, "-"), "-")
}

// clusterURL is -cluster-url, else the address the page listens on (its
// first listener, as bound) with the public IP, the listen host or the
// machine's first non-loopback address.
func (c *config) clusterURL(scheme, addr string) string {
	if c.Cluster.URL != "" {
		return c.Cluster.URL
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	ip, _ := netip.ParseAddr(host)
	switch {
	case c.publicIP.IsValid():
		host = c.publicIP.String()
	case host == "" || ip.IsUnspecified():
		host = "127.0.0.1"
		if as, err := net.InterfaceAddrs(); err == nil {
			for _, a := range as {
				if p, err := netip.ParsePrefix(a.String()); err == nil && !p.Addr().IsLoopback() && p.Addr().Is4() {
					host = p.Addr().String()
					break
				}
			}
		}
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// natsCluster connects to NATS and makes the cluster's registry and bus.
// The connection reconnects for ever; losing it is logged (a partition:
// the live calls go on). close ends both.
func natsCluster(ctx context.Context, c config, url *nodeURL, log *slog.Logger) (*wcsapi.ClusterConfig, func(), error) {
	cl := c.Cluster
	id := c.nodeID()
	opts := []nats.Option{
		nats.Name("sipstream " + id),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("NATS connection lost: the cluster's registry is unreachable from this node; its live calls go on", "node", id, "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS connection back", "node", id)
		}),
	}
	if cl.Creds != "" {
		opts = append(opts, nats.UserCredentials(cl.Creds))
	}
	if cl.CA != "" {
		opts = append(opts, nats.RootCAs(cl.CA))
	}
	if cl.Cert != "" {
		opts = append(opts, nats.ClientCert(cl.Cert, cl.Key))
	}
	nc, err := nats.Connect(cl.NATS, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("NATS (-nats): %w", err)
	}
	reg, err := cluster.NewNATS(ctx, nc, cluster.NATSConfig{Cluster: cl.Name, TTL: cl.TTL, Replicas: cl.Replicas})
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("NATS JetStream (-nats; JetStream must be on: nats-server -js): %w", err)
	}
	// Two live nodes with one id would take each other's calls for stale
	// ones: wait for a previous life's heartbeat to expire, refuse a live
	// twin.
	deadline := time.Now().Add(cl.TTL + time.Second)
	for {
		nodes, err := reg.Nodes(ctx)
		if err != nil {
			_ = reg.Close()
			nc.Close()
			return nil, nil, fmt.Errorf("NATS JetStream: %w", err)
		}
		twin := false
		for _, n := range nodes {
			twin = twin || n.ID == id
		}
		if !twin {
			break
		}
		if time.Now().After(deadline) {
			_ = reg.Close()
			nc.Close()
			return nil, nil, fmt.Errorf("-node-id %q is in use by a live node of cluster %q: give each node its own", id, cl.Name)
		}
		log.Info("a node with this id beat recently (a previous run?): waiting for its heartbeat to expire", "node", id, "ttl", cl.TTL)
		select {
		case <-ctx.Done():
			_ = reg.Close()
			nc.Close()
			return nil, nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	log.Info("cluster node", "node", id, "cluster", cl.Name, "ttl", cl.TTL)
	closeAll := func() {
		_ = reg.Close()
		nc.Close()
	}
	return &wcsapi.ClusterConfig{Registry: reg, Bus: reg, URL: url.Load, MaxCalls: c.MaxCalls}, closeAll, nil
}

// natsSecrets are the credentials in -nats's URLs, which the logs must not
// show.
func natsSecrets(urls string) []string {
	var out []string
	for _, u := range strings.Split(urls, ",") {
		pu, err := url.Parse(strings.TrimSpace(u))
		if err != nil || pu.User == nil {
			continue
		}
		out = append(out, pu.User.Username())
		if p, ok := pu.User.Password(); ok {
			out = append(out, p)
		}
	}
	return out
}

// nodeURL is the node's HTTP base URL, known once the page listens.
type nodeURL struct{ v atomic.Pointer[string] }

// Load returns the URL; "" before it is known.
func (u *nodeURL) Load() string {
	if p := u.v.Load(); p != nil {
		return *p
	}
	return ""
}

// Store sets the URL.
func (u *nodeURL) Store(s string) { u.v.Store(&s) }
