package httpshim

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are one Server's Prometheus series, in a registry of its own
// (GET /metrics).
type metrics struct {
	reg         *prometheus.Registry
	sessions    prometheus.GaugeFunc
	pending     prometheus.GaugeFunc
	handshakes  *prometheus.CounterVec   // mode, outcome
	messagesIn  prometheus.Counter       // messages posted
	messagesOut prometheus.Counter       // messages delivered (reads, long polls, event streams)
	rejections  *prometheus.CounterVec   // reason (the error code)
	latency     *prometheus.HistogramVec // route, method
	streams     prometheus.Gauge
}

func newMetrics(sessions, pending func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.sessions = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lanpeer_http_sessions", Help: "Established HTTP sessions.",
	}, sessions)
	m.pending = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "lanpeer_http_pending_handshakes", Help: "HTTP handshakes between init and finish.",
	}, pending)
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanpeer_http_handshakes_total", Help: "HTTP handshakes by key-agreement mode and outcome (ok or the error code).",
	}, []string{"mode", "outcome"})
	m.messagesIn = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lanpeer_http_messages_in_total", Help: "Room messages stored from HTTP clients.",
	})
	m.messagesOut = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lanpeer_http_messages_out_total", Help: "Room messages delivered to HTTP clients (reads, long polls, event streams).",
	})
	m.rejections = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lanpeer_http_rejections_total", Help: "Refused HTTP requests by reason (the error code).",
	}, []string{"reason"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "lanpeer_http_request_duration_seconds", Help: "HTTP request latency by route and method (event streams and long polls included).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"route", "method"})
	m.streams = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "lanpeer_http_event_streams", Help: "Open Server-Sent Event streams.",
	})
	m.reg.MustRegister(m.sessions, m.pending, m.handshakes, m.messagesIn, m.messagesOut, m.rejections, m.latency, m.streams,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
