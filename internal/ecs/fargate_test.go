package ecs

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs/types"
)

// TestFargateSizeTable checks ValidFargateSize against the table written out
// by hand (ecs-behaviour.md §6), for every memory value a multiple of 512
// MiB up to 128 GiB, so that both the allowed and the refused values are
// covered.
func TestFargateSizeTable(t *testing.T) {
	steps := func(lo, hi, step int) []int {
		var out []int
		for m := lo; m <= hi; m += step {
			out = append(out, m)
		}
		return out
	}
	want := map[int][]int{
		256:   {512, 1024, 2048},
		512:   steps(1024, 4096, 1024),
		1024:  steps(2048, 8192, 1024),
		2048:  steps(4096, 16384, 1024),
		4096:  steps(8192, 30720, 1024),
		8192:  steps(16384, 61440, 4096),
		16384: steps(32768, 122880, 8192),
	}
	for _, cpu := range []int{0, 128, 256, 384, 512, 1024, 2048, 3072, 4096, 8192, 16384, 32768} {
		allowed := map[int]bool{}
		for _, m := range want[cpu] {
			allowed[m] = true
		}
		for m := 0; m <= 131072; m += 512 {
			if got := ValidFargateSize(cpu, m); got != allowed[m] {
				t.Errorf("ValidFargateSize(%d, %d) = %v, want %v", cpu, m, got, allowed[m])
			}
		}
	}
}

func TestValidFargateSizeOffGrid(t *testing.T) {
	for _, tc := range []struct {
		cpu, memory int
		want        bool
	}{
		{256, 512, true},
		{256, 1536, false}, // inside the range, but the 256 row is not a regular step
		{512, 1536, false},
		{1024, 2049, false},
		{4096, 30720, true},
		{4096, 31744, false},
		{8192, 20480, true},
		{8192, 18432, false}, // 4 GB steps
		{16384, 40960, true},
		{16384, 36864, false}, // 8 GB steps
		{-256, 512, false},
	} {
		if got := ValidFargateSize(tc.cpu, tc.memory); got != tc.want {
			t.Errorf("ValidFargateSize(%d, %d) = %v, want %v", tc.cpu, tc.memory, got, tc.want)
		}
	}
}

func TestFargateSizesIsACopy(t *testing.T) {
	s := FargateSizes()
	if len(s) != 7 || s[0].CPU != 256 || s[6].CPU != 16384 {
		t.Fatalf("FargateSizes() = %+v", s)
	}
	s[0].CPU = 1
	if !ValidFargateSize(256, 512) {
		t.Fatal("changing the returned slice changed the table")
	}
}

func TestFargateWindowsStartsAtOneVCPU(t *testing.T) {
	td := fargateWindowsTaskDef("256", "512")
	if err := PrepareTaskDefinition(td, PrepareOptions{}); err == nil {
		t.Fatal("Windows Fargate with 256 CPU accepted")
	}
	if err := PrepareTaskDefinition(fargateWindowsTaskDef("1024", "2048"), PrepareOptions{}); err != nil {
		t.Fatalf("Windows Fargate with 1 vCPU: %v", err)
	}
}

func fargateWindowsTaskDef(cpu, memory string) *types.TaskDefinition {
	return &types.TaskDefinition{
		Family:                  aws.String("win"),
		NetworkMode:             types.NetworkModeAwsvpc,
		RequiresCompatibilities: []types.Compatibility{types.CompatibilityFargate},
		Cpu:                     aws.String(cpu),
		Memory:                  aws.String(memory),
		RuntimePlatform:         &types.RuntimePlatform{OperatingSystemFamily: types.OSFamilyWindowsServer2019Core, CpuArchitecture: types.CPUArchitectureX8664},
		ContainerDefinitions:    []types.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("mcr.microsoft.com/windows/servercore:ltsc2019")}},
	}
}
