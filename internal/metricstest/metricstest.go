// Package metricstest reads metrics back from a Prometheus registry in
// tests: the value of one series, found by name and labels.
package metricstest

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Value returns the value of the series name{labels…} gathered from g: a
// counter's or gauge's value, a histogram's sample count. labels are
// name, value pairs and must match the series' labels exactly. A series
// that was never recorded reads 0.
func Value(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount())
	case m.Untyped != nil:
		return m.GetUntyped().GetValue()
	}
	t.Fatalf("metric %s: unsupported type", name)
	return 0
}

// Sum returns the sum of a histogram series' samples (0 when absent).
func Sum(t testing.TB, g prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	m := find(t, g, name, labels)
	if m == nil {
		return 0
	}
	if m.Histogram == nil {
		t.Fatalf("metric %s is not a histogram", name)
	}
	return m.GetHistogram().GetSampleSum()
}

// Series returns the label sets of every series of name, each as a map.
func Series(t testing.TB, g prometheus.Gatherer, name string) []map[string]string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []map[string]string
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			ls := map[string]string{}
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = lp.GetValue()
			}
			out = append(out, ls)
		}
	}
	return out
}

func find(t testing.TB, g prometheus.Gatherer, name string, labels []string) *dto.Metric {
	t.Helper()
	if len(labels)%2 != 0 {
		t.Fatalf("metric %s: labels must be name, value pairs", name)
	}
	mfs, err := g.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels)/2 {
				continue
			}
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for i := 0; i < len(labels); i += 2 {
				if v, ok := got[labels[i]]; !ok || v != labels[i+1] {
					continue series
				}
			}
			return m
		}
	}
	return nil
}
