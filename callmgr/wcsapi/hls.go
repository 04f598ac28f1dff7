package wcsapi

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/callmgr"
	"github.com/sipstream/sipstream/sink/hls"
)

// hlsSource is the calls of a Manager as an hls.Source: a stream is a live
// call's toStream, a muxer is a sink added with AddSink.
type hlsSource struct{ m *callmgr.Manager }

var _ hls.Source = hlsSource{}

// Lookup implements hls.Source.
func (h hlsSource) Lookup(name string) (hls.Stream, bool) {
	for _, ci := range h.m.Find(callmgr.Filter{ToStream: name}) {
		if !ci.Status.Final() {
			return hls.Stream{Owner: ci.CallID, Audio: ci.HasAudio, Video: ci.HasVideo}, true
		}
	}
	return hls.Stream{}, false
}

// Attach implements hls.Source.
func (h hlsSource) Attach(ctx context.Context, st hls.Stream, s *hls.Sink) (string, error) {
	si, err := h.m.AddSink(ctx, st.Owner, callmgr.SinkSpec{Sink: s})
	return si.ID, err
}

// Detach implements hls.Source.
func (h hlsSource) Detach(ctx context.Context, id string) {
	_ = h.m.RemoveSink(ctx, id) // fails when the call ended: callmgr closed it
}

// RequestKeyframe implements hls.Source.
func (h hlsSource) RequestKeyframe(callID string) {
	if c, ok := h.m.Call(callID); ok {
		c.RequestKeyframe()
	}
}

var hlsStreamsDesc = prometheus.NewDesc("sipstream_hls_streams", "Calls with an HLS muxer now (made on the first request, released after 30 s without one).", nil, nil)

// hlsCollector exports the HLS muxers alive.
type hlsCollector struct{ mux *hls.Mux }

// Describe implements prometheus.Collector.
func (h hlsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- hlsStreamsDesc }

// Collect implements prometheus.Collector.
func (h hlsCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(hlsStreamsDesc, prometheus.GaugeValue, float64(h.mux.Streams()))
}
