package ecs

// FargateSize is one row of the Fargate task-size table: a task cpu value
// (in units, 1024 per vCPU) and the memory values (MiB) allowed with it,
// from MinMemory to MaxMemory in steps of MemoryStep.
type FargateSize struct {
	CPU        int
	MinMemory  int
	MaxMemory  int
	MemoryStep int
}

// fargateSizes is the table from the ECS Developer Guide (AWS_Fargate,
// "Task CPU and memory"); 8 and 16 vCPU need Linux platform version 1.4.0 or
// later, which is the only one berth models. The 256 row is not a regular
// step: 512 MiB, 1 GB, 2 GB.
var fargateSizes = []FargateSize{
	{CPU: 256, MinMemory: 512, MaxMemory: 2048, MemoryStep: 0},
	{CPU: 512, MinMemory: 1024, MaxMemory: 4096, MemoryStep: 1024},
	{CPU: 1024, MinMemory: 2048, MaxMemory: 8192, MemoryStep: 1024},
	{CPU: 2048, MinMemory: 4096, MaxMemory: 16384, MemoryStep: 1024},
	{CPU: 4096, MinMemory: 8192, MaxMemory: 30720, MemoryStep: 1024},
	{CPU: 8192, MinMemory: 16384, MaxMemory: 61440, MemoryStep: 4096},
	{CPU: 16384, MinMemory: 32768, MaxMemory: 122880, MemoryStep: 8192},
}

// FargateSizes returns a copy of the Fargate task-size table, smallest cpu
// first. A MemoryStep of 0 means the row's memory values are 512, 1024 and
// 2048 (the 256-unit row).
func FargateSizes() []FargateSize {
	return append([]FargateSize(nil), fargateSizes...)
}

// ValidFargateSize reports whether a task cpu (units) and memory (MiB)
// combination is one Fargate offers.
func ValidFargateSize(cpu, memory int) bool {
	for _, s := range fargateSizes {
		if s.CPU != cpu {
			continue
		}
		if memory < s.MinMemory || memory > s.MaxMemory {
			return false
		}
		if s.MemoryStep == 0 {
			return memory == 512 || memory == 1024 || memory == 2048
		}
		return (memory-s.MinMemory)%s.MemoryStep == 0
	}
	return false
}
