package wcsapi

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sipstream/sipstream/media/whip"
)

// WebRTC publications into calls. The product's /call/inject_stream/startup
// {callId, streamName} sends the audio of a stream published to the server
// (a browser's microphone, over WebRTC) into a SIP call. New adds the WHIP
// server (Config.WHIP) to the Manager's stream sources, so callmgr's
// InjectStream takes a publication when no live call has that toStream, and
// stops it, like a call's stream, on /call/inject_stream/terminate, when the
// publication or the call ends. This file exports the server's metrics.

var (
	whipPublishersDesc  = prometheus.NewDesc("sipstream_whip_publishers", "WebRTC (WHIP) publications live now.", nil, nil)
	whipSubscribersDesc = prometheus.NewDesc("sipstream_whip_injections", "Calls hearing a WebRTC (WHIP) publication now.", nil, nil)
	whipFramesDesc      = prometheus.NewDesc("sipstream_whip_audio_frames_total", "Audio frames received from WebRTC (WHIP) publishers.", nil, nil)
)

// whipCollector exports the WHIP server's publications and injections.
type whipCollector struct{ srv *whip.Server }

// Describe implements prometheus.Collector.
func (c whipCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- whipPublishersDesc
	ch <- whipSubscribersDesc
	ch <- whipFramesDesc
}

// Collect implements prometheus.Collector.
func (c whipCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	ch <- prometheus.MustNewConstMetric(whipPublishersDesc, prometheus.GaugeValue, float64(st.Publishers))
	ch <- prometheus.MustNewConstMetric(whipSubscribersDesc, prometheus.GaugeValue, float64(st.Subscribers))
	ch <- prometheus.MustNewConstMetric(whipFramesDesc, prometheus.CounterValue, float64(st.Frames))
}
