package scheduler

import (
	"maps"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// Strategy kinds, compiled.
const (
	byCPU = iota
	byMemory
	bySpread
	byRandom
)

// level is one compiled strategy: a key per candidate instance, least
// first.
type level struct {
	kind int
	attr string // spread: the attribute; "" spreads by instance
}

// policy is a call's options, compiled: strategies as levels, memberOf
// expressions parsed.
type policy struct {
	levels   []level
	distinct bool
	member   []*Expression
	// dynamic: a memberOf expression reads task:group, so placing a task
	// can change its value.
	dynamic bool
	seed    uint64
}

func compile(o Options) (*policy, error) {
	if err := validateShape(o); err != nil {
		return nil, err
	}
	strategies := o.Strategies
	if len(strategies) == 0 {
		strategies = DefaultStrategies
	}
	p := &policy{seed: o.Seed}
	for _, s := range strategies {
		field := aws.ToString(s.Field)
		switch s.Type {
		case types.PlacementStrategyTypeBinpack:
			if strings.EqualFold(field, "cpu") {
				p.levels = append(p.levels, level{kind: byCPU})
			} else {
				p.levels = append(p.levels, level{kind: byMemory})
			}
		case types.PlacementStrategyTypeSpread:
			attr, _ := strings.CutPrefix(field, "attribute:")
			if field == "instanceId" || field == "host" {
				attr = ""
			}
			p.levels = append(p.levels, level{kind: bySpread, attr: attr})
		default:
			p.levels = append(p.levels, level{kind: byRandom})
		}
	}
	for _, c := range o.Constraints {
		if c.Type == types.PlacementConstraintTypeDistinctInstance {
			p.distinct = true
			continue
		}
		e, err := ParseExpression(aws.ToString(c.Expression))
		if err != nil {
			return nil, err
		}
		p.member = append(p.member, e)
		p.dynamic = p.dynamic || e.dynamic
	}
	return p, nil
}

// Placement is one task placed: the index of its instance in the snapshot.
type Placement struct {
	Instance    int
	InstanceARN string
}

// Decision is the whole answer of a placement: where tasks went, ECS's
// failures, and a verdict on every instance.
type Decision struct {
	Placements []Placement
	// Failures are Place's failures: empty when every task was placed;
	// otherwise one per instance of the snapshot, in snapshot order, saying
	// why it could not take the first task that was not placed.
	Failures []Failure
	// Verdicts has one entry per instance of the snapshot, in order.
	Verdicts []Verdict
}

// Verdict is what placement concluded about one instance.
type Verdict struct {
	Instance          int
	InstanceARN, Name string
	// Placed is how many of the call's tasks it took.
	Placed int
	// Failure says why it could take no further task of the demand; nil
	// when it could.
	Failure *Failure
}

// Place places count tasks of demand d on the snapshot and returns where
// they went. Instances are filtered on status, agent, resources, required
// attributes and constraints, then ranked by the strategies (ties of all
// go to the earliest instance of the snapshot); each task placed debits
// its instance before the next is placed, so count tasks never
// over-commit one. When a task cannot be placed, failures has every
// instance's reason once and no further task is tried (resources only
// shrink). The snapshot is not modified.
//
// Options must have passed ValidateOptions; if they do not, nothing is
// placed and the one failure, of reason "INVALID", says why.
func Place(snapshot []Instance, d Demand, count int, opts Options) ([]Placement, []Failure) {
	pol, err := compile(opts)
	if err != nil {
		return nil, []Failure{{Instance: -1, Reason: "INVALID", Detail: err.Error()}}
	}
	p := newPlacer(snapshot, &d, pol)
	p.run(count)
	return p.placements, p.failures(count)
}

// Decide is Place with a verdict on every instance: what berth
// explain-placement shows and RunTask's failure details come from.
// Invalid options are an error of kind errdefs.ErrInvalidArgument.
func Decide(snapshot []Instance, d Demand, count int, opts Options) (Decision, error) {
	pol, err := compile(opts)
	if err != nil {
		return Decision{}, err
	}
	p := newPlacer(snapshot, &d, pol)
	p.run(count)
	dec := Decision{Placements: p.placements, Failures: p.failures(count), Verdicts: make([]Verdict, len(snapshot))}
	for i := range snapshot {
		dec.Verdicts[i] = Verdict{Instance: i, InstanceARN: snapshot[i].ARN, Name: snapshot[i].Name, Failure: p.why(i)}
	}
	for _, pl := range p.placements {
		dec.Verdicts[pl.Instance].Placed++
	}
	return dec, nil
}

// placer is one call's state. Candidates (instances that can take the
// next task) are kept as parallel arrays indexed by position, so ranking
// is a tight scan; a candidate that can take no more is swapped out. The
// candidate set only shrinks: only candidates change, and only by taking
// tasks.
type placer struct {
	snap []Instance
	d    *Demand
	pol  *policy
	// out marks the snapshot instances that are not candidates; why is
	// worked out only when asked (failures, verdicts), from the same
	// checks on the same state, so that a call that places everything
	// builds no text.
	out []bool
	// own holds private copies of the instances tasks were placed on.
	own map[int32]*Instance

	idx      []int32 // snapshot index of each candidate
	cpu, mem []int64 // remaining CPU and memory of each candidate
	// bucket is, per level, each candidate's spread bucket (spread
	// levels only); counts is, per level, the tasks of the demand's group
	// in each bucket, over the whole snapshot.
	bucket [][]int32
	counts [][]int

	bufA, bufB []int32 // tie lists
	step       uint64  // tasks placed, for random keys
	placements []Placement
}

func newPlacer(snap []Instance, d *Demand, pol *policy) *placer {
	n := len(snap)
	p := &placer{
		snap: snap, d: d, pol: pol,
		out:    make([]bool, n),
		own:    map[int32]*Instance{},
		idx:    make([]int32, 0, n),
		cpu:    make([]int64, 0, n),
		mem:    make([]int64, 0, n),
		bucket: make([][]int32, len(pol.levels)),
		counts: make([][]int, len(pol.levels)),
	}
	for i := range snap {
		if !p.fits(&snap[i], true) {
			p.out[i] = true
			continue
		}
		p.idx = append(p.idx, int32(i))
		p.cpu = append(p.cpu, snap[i].Remaining.CPU)
		p.mem = append(p.mem, snap[i].Remaining.Memory)
	}
	for l, lv := range pol.levels {
		if lv.kind == bySpread {
			p.spreadBuckets(l, lv.attr)
		}
	}
	return p
}

// missingBucket is the bucket of instances without the spread attribute.
const missingBucket = "\x00missing"

// spreadBuckets groups the snapshot's instances by the value of the
// spread field and counts the demand's group's tasks in each group. Every
// instance counts, candidate or not: spread balances the group's tasks
// wherever they run.
func (p *placer) spreadBuckets(l int, attr string) {
	g := p.d.Group
	if attr == "" { // by instance: one bucket each
		counts := make([]int, len(p.snap))
		for i := range p.snap {
			counts[i] = p.snap[i].Groups[g]
		}
		p.counts[l] = counts
		p.bucket[l] = make([]int32, len(p.idx))
		copy(p.bucket[l], p.idx)
		return
	}
	ids := map[string]int32{}
	of := make([]int32, len(p.snap))
	var counts []int
	for i := range p.snap {
		v, ok := p.snap[i].Attribute(attr)
		if !ok {
			v = missingBucket
		}
		b, seen := ids[v]
		if !seen {
			b = int32(len(counts))
			ids[v] = b
			counts = append(counts, 0)
		}
		of[i] = b
		counts[b] += p.snap[i].Groups[g]
	}
	p.counts[l] = counts
	p.bucket[l] = make([]int32, len(p.idx))
	for k, i := range p.idx {
		p.bucket[l][k] = of[i]
	}
}

// fits is whether inst can take the next task: check returning nil,
// without building a failure.
func (p *placer) fits(inst *Instance, constraints bool) bool {
	if !fits(inst, p.d) {
		return false
	}
	if !constraints {
		return true
	}
	if p.pol.distinct && inst.Groups[p.d.Group] > 0 {
		return false
	}
	for _, e := range p.pol.member {
		if !e.Match(inst) {
			return false
		}
	}
	return true
}

// why is the failure of a snapshot instance that is not a candidate, as
// it is now.
func (p *placer) why(i int) *Failure {
	if !p.out[i] {
		return nil
	}
	inst := p.own[int32(i)]
	if inst == nil {
		inst = &p.snap[i]
	}
	f := p.check(inst, true)
	f.Instance = i
	return f
}

// check says why inst cannot take the next task: status, agent,
// resources and attributes, then (when constraints is set) the
// constraints in the order given.
func (p *placer) check(inst *Instance, constraints bool) *Failure {
	if f := check(inst, p.d); f != nil || !constraints {
		return f
	}
	if p.pol.distinct && inst.Groups[p.d.Group] > 0 {
		return fail(inst, ReasonDistinctInstance, RuleDistinctInstance, "distinctInstance: a task of group "+p.d.Group+" runs here")
	}
	for _, e := range p.pol.member {
		if !e.Match(inst) {
			clause := e.Explain(inst)
			f := fail(inst, ReasonMemberOf, RuleMemberOf, clause)
			f.Constraint, f.Clause = e.String(), clause
			return f
		}
	}
	return nil
}

func (p *placer) run(count int) {
	for range count {
		if len(p.idx) == 0 {
			return
		}
		k := p.choose()
		i := p.idx[k]
		p.placements = append(p.placements, Placement{Instance: int(i), InstanceARN: p.snap[i].ARN})
		p.take(k)
		p.step++
	}
}

// choose returns the position of the best candidate: least key of the
// first strategy, its ties broken by the next, and so on; remaining ties
// go to the earliest instance of the snapshot.
func (p *placer) choose() int32 {
	ties := p.least(0, nil, p.bufA[:0])
	p.bufA = ties
	for l := 1; l < len(p.pol.levels) && len(ties) > 1; l++ {
		next := p.least(l, ties, p.bufB[:0])
		p.bufA, p.bufB = p.bufB, ties
		ties = next
	}
	best := ties[0]
	for _, k := range ties[1:] {
		if p.idx[k] < p.idx[best] {
			best = k
		}
	}
	return best
}

// least returns the candidates among (all when nil) with the least key
// of level l, appended to out.
func (p *placer) least(l int, among []int32, out []int32) []int32 {
	lv := p.pol.levels[l]
	var keys []int64
	switch lv.kind {
	case byCPU:
		keys = p.cpu
	case byMemory:
		keys = p.mem
	}
	n := len(among)
	if among == nil {
		n = len(p.idx)
	}
	best := int64(math.MaxInt64)
	for j := range n {
		k := int32(j)
		if among != nil {
			k = among[j]
		}
		var v int64
		switch {
		case keys != nil:
			v = keys[k]
		case lv.kind == bySpread:
			v = int64(p.counts[l][p.bucket[l][k]])
		default:
			v = int64(mix(p.pol.seed, p.step, uint64(p.idx[k])) >> 1)
		}
		if v < best {
			best = v
			out = append(out[:0], k)
		} else if v == best {
			out = append(out, k)
		}
	}
	return out
}

// mix is a splitmix64 hash of a seed, a step and an instance: the random
// strategy's key, the same for the same inputs.
func mix(seed, step, i uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(step+1) + 0xbf58476d1ce4e5b9*(i+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// take places a task on the candidate at position k: its private copy is
// debited, the spread counts grow, and it is checked again.
func (p *placer) take(k int32) {
	i := p.idx[k]
	inst := p.own[i]
	if inst == nil {
		c := p.snap[i]
		c.Remaining = cloneResources(c.Remaining)
		c.Groups = maps.Clone(c.Groups)
		if c.Groups == nil {
			c.Groups = map[string]int{}
		}
		inst = &c
		p.own[i] = inst
	}
	d := p.d
	inst.Remaining.CPU -= d.CPU
	inst.Remaining.Memory -= d.Memory
	inst.Remaining.Ports = append(inst.Remaining.Ports, d.Ports...)
	inst.Remaining.PortsUDP = append(inst.Remaining.PortsUDP, d.PortsUDP...)
	inst.Groups[d.Group]++
	p.cpu[k], p.mem[k] = inst.Remaining.CPU, inst.Remaining.Memory
	for l, lv := range p.pol.levels {
		if lv.kind == bySpread {
			p.counts[l][p.bucket[l][k]]++
		}
	}
	if !p.fits(inst, p.pol.distinct || p.pol.dynamic) {
		p.out[i] = true
		p.remove(k)
	}
}

// remove swaps the candidate at position k out.
func (p *placer) remove(k int32) {
	last := int32(len(p.idx) - 1)
	p.idx[k], p.cpu[k], p.mem[k] = p.idx[last], p.cpu[last], p.mem[last]
	p.idx, p.cpu, p.mem = p.idx[:last], p.cpu[:last], p.mem[:last]
	for l := range p.bucket {
		if b := p.bucket[l]; b != nil {
			b[k] = b[last]
			p.bucket[l] = b[:last]
		}
	}
}

// failures are every instance's reason when fewer than count tasks were
// placed.
func (p *placer) failures(count int) []Failure {
	if len(p.placements) >= count {
		return nil
	}
	var out []Failure
	for i := range p.snap {
		if f := p.why(i); f != nil {
			out = append(out, *f)
		}
	}
	return out
}
