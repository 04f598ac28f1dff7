package cluster_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/sipstream/sipstream/callmgr/cluster"
)

// Two nodes of one cluster: a call is placed, claimed and recorded by its
// node, found on the other node, and a request for it reaches its owner.
// The nodes share a Memory registry here (one process); nodes on
// different machines share a NATS registry instead.
func ExampleJoin() {
	reg := cluster.NewMemory(3*time.Second, nil)
	defer reg.Close()
	bus := cluster.NewMemoryBus()
	defer bus.Close()
	ctx := context.Background()

	join := func(id string) *cluster.Member {
		m, err := cluster.Join(ctx, cluster.Config{
			ID:       id,
			Registry: reg,
			Bus:      bus,
			Info: func() cluster.NodeInfo {
				return cluster.NodeInfo{URL: "http://" + id + ".example:8080", MaxCalls: 100}
			},
			// Called once in the cluster for each call of a node that died.
			OnOrphan: func(c cluster.Call) { fmt.Println("failed:", c.ID, c.Reason) },
		})
		if err != nil {
			log.Fatal(err)
		}
		return m
	}
	a, b := join("node-a"), join("node-b")
	defer b.Close(ctx)
	defer a.Close(ctx)
	// Requests for node-a's calls, from any node.
	if err := a.Serve(func(ctx context.Context, req []byte) []byte {
		return []byte("node-a terminated " + string(req))
	}); err != nil {
		log.Fatal(err)
	}

	// Placement: the least-loaded node with room (ties: the lower id).
	n, err := b.Pick("")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("placed on", n.ID, n.URL)

	// The chosen node claims the call's keys, then records its states.
	if _, err := a.Claim(ctx, cluster.Call{ID: "call-1", Status: "TRYING",
		Stream: "rtmp://live.example/app/secret-key", Name: "stream-1"}); err != nil {
		log.Fatal(err)
	}
	a.Set(cluster.Call{ID: "call-1", Status: "ESTABLISHED"})
	// The same RTMP target cannot be published twice in the cluster.
	_, err = b.Claim(ctx, cluster.Call{ID: "call-2", Stream: "rtmp://live.example/app/secret-key"})
	fmt.Println(err)

	// node-b finds the call once its view has it.
	var c cluster.Call
	for {
		var ok bool
		if c, ok = b.ByName("stream-1"); ok && c.Status == "ESTABLISHED" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println("found", c.ID, c.Status, "on", c.Node)
	answer, err := b.Request(ctx, c.Node, []byte(c.ID))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(answer))
	// Output:
	// placed on node-a http://node-a.example:8080
	// cluster: the RTMP stream is already published by call "call-1" on node "node-a"
	// found call-1 ESTABLISHED on node-a
	// node-a terminated call-1
}
