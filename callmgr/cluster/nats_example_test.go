package cluster_test

import (
	"context"
	"log"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sipstream/sipstream/callmgr/cluster"
)

// One node of a cluster whose nodes run on different machines: they
// share NATS (JetStream on) as registry and bus. The connection
// reconnects for ever: while NATS is away the node's calls go on, and
// its writes wait for NATS to come back. (Not run: it needs a
// nats-server.)
func ExampleNewNATS() {
	nc, err := nats.Connect("nats://nats-1.example:4222,nats://nats-2.example:4222,nats://nats-3.example:4222",
		nats.Name("sipstream gw-1"), nats.MaxReconnects(-1))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// Three replicas for a JetStream cluster of three servers; every node
	// of the cluster uses the same Cluster and TTL.
	reg, err := cluster.NewNATS(ctx, nc, cluster.NATSConfig{Cluster: "prod", TTL: 6 * time.Second, Replicas: 3})
	if err != nil {
		log.Fatal(err) // e.g. no JetStream: a wrapped cluster.ErrUnavailable
	}
	defer reg.Close()

	host, _ := os.Hostname()
	m, err := cluster.Join(ctx, cluster.Config{ID: "gw-1", Registry: reg, Bus: reg,
		Info: func() cluster.NodeInfo { return cluster.NodeInfo{URL: "http://" + host + ":8080", MaxCalls: 200} }})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close(context.Background())
}
