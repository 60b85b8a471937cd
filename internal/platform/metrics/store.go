package metrics

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// StoreUse is how full one stream or bucket of the bus is.
type StoreUse struct {
	Stream   string // a bucket is named as its stream: KV_ and its name
	Bytes    uint64
	MaxBytes int64 // 0 or less: unbounded
}

var (
	descStoreBytes = prometheus.NewDesc("tocsin_bus_store_bytes",
		"Bytes each stream and bucket of the bus holds now.", []string{"stream"}, nil)
	descStoreMax = prometheus.NewDesc("tocsin_bus_store_max_bytes",
		"The most each stream and bucket of the bus keeps (its MaxBytes).", []string{"stream"}, nil)
	descStoreFill = prometheus.NewDesc("tocsin_bus_store_fill_ratio",
		"Bytes held over MaxBytes, for each bounded stream and bucket: past 0.8 someone must act, at 1 a stream of history refuses new events.", []string{"stream"}, nil)
)

// StoreUsage sets how the fill of the bus's streams and buckets is asked
// at each scrape: it lives in JetStream, shared by every process. The first
// call counts; a process has one bus.
func (m *Metrics) StoreUsage(usage func(context.Context) ([]StoreUse, error)) {
	if m == nil {
		return
	}
	err := m.reg.Register(storeCollector{usage})
	if are := (prometheus.AlreadyRegisteredError{}); err != nil && !errors.As(err, &are) {
		panic(err) // only a bug in the descriptions above can do this
	}
}

// storeCollector reports the bus's fill at each scrape; absent from a
// scrape when JetStream does not answer in time.
type storeCollector struct {
	usage func(context.Context) ([]StoreUse, error)
}

func (c storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStoreBytes
	ch <- descStoreMax
	ch <- descStoreFill
}

func (c storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	uses, _ := c.usage(ctx) // what was found before an error is still true
	for _, u := range uses {
		ch <- prometheus.MustNewConstMetric(descStoreBytes, prometheus.GaugeValue, float64(u.Bytes), u.Stream)
		if u.MaxBytes > 0 {
			ch <- prometheus.MustNewConstMetric(descStoreMax, prometheus.GaugeValue, float64(u.MaxBytes), u.Stream)
			ch <- prometheus.MustNewConstMetric(descStoreFill, prometheus.GaugeValue, float64(u.Bytes)/float64(u.MaxBytes), u.Stream)
		}
	}
}
