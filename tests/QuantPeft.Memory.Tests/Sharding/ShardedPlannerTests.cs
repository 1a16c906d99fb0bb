using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Sharding;

public sealed class ShardedPlannerTests
{
    private static readonly Workload W = new(Seq: 2048);

    [Fact]
    public void EveryCandidateIsOneTheEnginesRun()
    {
        ShardedPlan plan = ShardedPlanner.Plan(ModelPresets.Get("llama-2-7b"), 2, W, new Budget { Vram = 24L << 30 }, new Constraints());
        Assert.NotEmpty(plan.Candidates);
        Assert.All(plan.Candidates, c => Assert.True(EngineStrategies.Reproducible(c.Strategy), c.Describe()));
        // Both layouts of each strategy are priced.
        Assert.Equal(plan.Candidates.Count(c => c.Layout.OffloadParams), plan.Candidates.Count(c => !c.Layout.OffloadParams));
    }

    [Fact]
    public void OffloadIsChosenOnlyWhenNothingElseFits()
    {
        var c = new Constraints { Method = TrainingMethod.Lora, Weights = WeightFormat.Nf4, Rank = 16, Batch = 1, Checkpointing = true };
        // 7B QLoRA fits two 24 GiB cards without offload: the same strategy offloaded ranks below it.
        ShardedPlan small = ShardedPlanner.Plan(ModelPresets.Get("llama-2-7b"), 2, W, new Budget { Vram = 24L << 30 }, c);
        Assert.False(small.ChosenCandidate!.Layout.OffloadParams);
        Assert.True(small.Candidates[1].Fits);
        Assert.True(small.Candidates[1].Layout.OffloadParams);
        // 70B QLoRA does not: each rank would hold half the 4-bit base.
        ShardedPlan large = ShardedPlanner.Plan(ModelPresets.Get("llama-2-70b"), 2, W, new Budget { Vram = 24L << 30 }, c);
        Assert.True(large.ChosenCandidate!.Layout.OffloadParams);
    }

    [Fact]
    public void TheHostBudgetBoundsOffload()
    {
        var c = new Constraints { Method = TrainingMethod.Full, Batch = 1, Checkpointing = true };
        ShardedPlan plan = ShardedPlanner.Plan(ModelPresets.Get("llama-2-70b"), 2, W, new Budget { Vram = 24L << 30, Ram = 128L << 30 }, c, offload: true);
        ShardedCandidate only = Assert.Single(plan.Candidates);
        // 70B full fine-tuning offloaded: bf16 weights, gradients and two bf16 moments, 8 B per parameter on the host.
        Assert.InRange(only.Estimate.HostBytes, 8 * 68_000_000_000L, 8 * 71_000_000_000L);
        Assert.Contains(only.Overflows, o => o.StartsWith("ram:", StringComparison.Ordinal));
        Assert.Null(plan.ChosenCandidate);
    }

    [Theory]
    [InlineData("--method")]
    [InlineData("--weights")]
    [InlineData("--optimizer")]
    [InlineData("--chunked-loss")]
    public void KnobsTheEnginesDoNotRunAreRejectedByName(string flag)
    {
        Constraints c = flag switch
        {
            "--method" => new Constraints { Method = TrainingMethod.Dora },
            "--weights" => new Constraints { Weights = WeightFormat.Int8 },
            "--optimizer" => new Constraints { Optimizer = OptimizerKind.PagedAdamW8bit },
            _ => new Constraints { ChunkedLoss = true },
        };
        var e = Assert.Throws<PlanningException>(() => ShardedPlanner.Plan(ModelPresets.Get("llama-2-7b"), 2, W, new Budget(), c));
        Assert.StartsWith(flag, e.Message);
    }

    [Fact]
    public void OneGpuIsRejected()
    {
        var e = Assert.Throws<PlanningException>(() => ShardedPlanner.Plan(ModelPresets.Get("llama-2-7b"), 1, W, new Budget(), new Constraints()));
        Assert.StartsWith("--gpus", e.Message);
    }
}
