package cluster

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// memberStats are the counters a Member keeps for its metrics.
type memberStats struct {
	orphaned       atomic.Uint64 // orphans this member reported (won the compare-and-set)
	registryErrors atomic.Uint64 // registry operations of this member that failed
}

var (
	nodesDesc = prometheus.NewDesc("sipstream_cluster_nodes",
		"Live nodes of the cluster (their heartbeat has not expired), as this node last saw them.", nil, nil)
	connectedDesc = prometheus.NewDesc("sipstream_cluster_connected",
		"1 when this node reaches the cluster's registry, 0 when not.", nil, nil)
	clusterCallsDesc = prometheus.NewDesc("sipstream_cluster_calls",
		"Live (not final) calls in the cluster's shared view, by owner node.", []string{"node"}, nil)
	orphanedDesc = prometheus.NewDesc("sipstream_cluster_orphaned_total",
		"Calls of dead or restarted nodes this node reported failed (each is reported by one node of the cluster).", nil, nil)
	registryErrorsDesc = prometheus.NewDesc("sipstream_cluster_registry_errors_total",
		"Registry operations of this node that failed (heartbeats, writes, watches, node listings).", nil, nil)
	pendingDesc = prometheus.NewDesc("sipstream_cluster_pending_writes",
		"This node's calls whose latest state is not stored in the registry yet (or whose deletion is pending).", nil, nil)
)

// Describe implements prometheus.Collector: the Member's metrics are
// sipstream_cluster_nodes, sipstream_cluster_connected,
// sipstream_cluster_calls{node}, sipstream_cluster_orphaned_total,
// sipstream_cluster_registry_errors_total and
// sipstream_cluster_pending_writes.
func (m *Member) Describe(ch chan<- *prometheus.Desc) {
	ch <- nodesDesc
	ch <- connectedDesc
	ch <- clusterCallsDesc
	ch <- orphanedDesc
	ch <- registryErrorsDesc
	ch <- pendingDesc
}

// Collect implements prometheus.Collector.
func (m *Member) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	nodes := len(m.nodes)
	connected := 0.0
	if m.up {
		connected = 1
	}
	calls := make(map[string]int)
	for _, n := range m.nodes {
		calls[n.ID] = 0
	}
	for _, c := range m.view {
		if !c.Final {
			calls[c.Node]++
		}
	}
	pending := len(m.drops)
	for _, o := range m.owned {
		if o.dirty() {
			pending++
		}
	}
	m.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(nodesDesc, prometheus.GaugeValue, float64(nodes))
	ch <- prometheus.MustNewConstMetric(connectedDesc, prometheus.GaugeValue, connected)
	for node, k := range calls {
		ch <- prometheus.MustNewConstMetric(clusterCallsDesc, prometheus.GaugeValue, float64(k), node)
	}
	ch <- prometheus.MustNewConstMetric(orphanedDesc, prometheus.CounterValue, float64(m.stats.orphaned.Load()))
	ch <- prometheus.MustNewConstMetric(registryErrorsDesc, prometheus.CounterValue, float64(m.stats.registryErrors.Load()))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(pending))
}
