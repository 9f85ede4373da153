package dlq

// episode returns the entries of the current episode of a hold on key whose
// first command is first, among es (DLQ entries in DLQ order): the last
// failed (not held) entry of stage for key whose command is first, then the
// entries of stage for key held behind first after it, each original record
// once (the relay may publish an entry twice after a crash). It returns nil
// when the failed entry is not in es.
//
// Earlier entries of the same alert belong to episodes already redriven: a
// redriven command that fails again is a new failed entry, and the commands
// redriven after it are held again, as new entries.
func episode(es []Entry, stage, key, first string) []Entry {
	start := -1
	for i := range es {
		e := &es[i]
		if e.Stage == stage && e.AlertKey == key && !e.Held && e.CommandID == first {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	type orig struct {
		topic     string
		partition int32
		offset    int64
	}
	seen := map[orig]bool{}
	var out []Entry
	for i := start; i < len(es); i++ {
		e := &es[i]
		if e.Stage != stage || e.AlertKey != key {
			continue
		}
		if i != start && (!e.Held || e.HeldBehind != first) {
			continue
		}
		o := orig{e.Topic, e.Partition, e.Offset}
		if seen[o] {
			continue
		}
		seen[o] = true
		out = append(out, *e)
	}
	return out
}
