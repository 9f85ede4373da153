package rules

import (
	"testing"
)

// BenchmarkRules measures the pure rules on one goroutine (one core), per
// direction, in records/s.
func BenchmarkRules(b *testing.B) {
	r := newRules(b)
	b.Run("nomis_to_dps", func(b *testing.B) {
		ch := nomisChange(b, OpUpdate)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := r.NOMISAlert(ch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("dps_to_nomis", func(b *testing.B) {
		ch := dpsChange(b, OpUpdate)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := r.DPSAlert(ch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}
