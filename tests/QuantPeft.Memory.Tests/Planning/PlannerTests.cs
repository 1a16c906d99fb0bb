using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Planning;

public sealed class PlannerTests
{
    private static readonly ModelSpec Llama7B = ModelPresets.Get("llama-2-7b");
    private static readonly Budget Gpu24 = new() { Vram = 24L << 30, Ram = 64L << 30 };

    private static Constraints AllFixed => new()
    {
        Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 16, Targets = TargetModules.AllLinear,
        Optimizer = OptimizerKind.PagedAdamW8bit, Layerwise = false, Checkpointing = true, Attention = AttentionKind.Fused,
        Batch = 1, ChunkedLoss = true,
    };

    [Fact]
    public void EveryKnobFixedGivesExactlyOneCandidate()
    {
        TrainingPlan plan = Planner.Plan(Llama7B, new Workload(2048), Gpu24, AllFixed);
        Assert.Single(plan.Candidates);
        Assert.Equal(0, plan.Chosen);
    }

    [Fact]
    public void SeventyBillionSearchHasABoundedCandidateCount()
    {
        TrainingPlan plan = Planner.Plan(ModelPresets.Get("llama-3.1-70b"), new Workload(2048), Gpu24, new Constraints());
        Assert.InRange(plan.Candidates.Count, 500, 4096);
        Assert.Equal(plan.Candidates.Count, plan.Candidates.Select(c => c.Strategy).Distinct().Count());
    }

    [Fact]
    public void RejectedCandidatesNameTheComponentAndTheOverflow()
    {
        var budget = new Budget { Vram = 12L << 30 };
        TrainingPlan plan = Planner.Plan(Llama7B, new Workload(2048), budget, new Constraints { Method = TrainingMethod.Full });
        Assert.Null(plan.Chosen);
        foreach (Candidate c in plan.Candidates)
        {
            Overflow o = Assert.Single(c.Overflows);
            Assert.Equal("vram", o.Budget);
            Assert.Equal(c.Estimate.PeakBytes - budget.Vram!.Value, o.OverBy);
            Assert.Contains(o.Component.JsonName(), o.Message);
            // The crossing component is where the running total (in charging order) first exceeds the budget.
            long before = MemoryComponents.DeviceOrder.TakeWhile(m => m != o.Component).Sum(m => c.Estimate.Device[m]);
            Assert.True(before <= budget.Vram && before + c.Estimate.Device[o.Component] > budget.Vram);
        }
    }

    [Fact]
    public void PagedHostShareIsCheckedAgainstRam()
    {
        var budget = new Budget { Vram = 80L << 30, Ram = 1L << 30 };
        var c = AllFixed with { Method = TrainingMethod.Full, Weights = WeightFormat.Bf16, DoubleQuant = false, Rank = null, Targets = null,
            Optimizer = OptimizerKind.PagedAdamW };
        Candidate only = Assert.Single(Planner.Plan(Llama7B, new Workload(2048), budget, c).Candidates);
        Overflow o = Assert.Single(only.Overflows);
        Assert.Equal(MemoryComponent.PagedStatesHost, o.Component);
        Assert.Equal(only.Estimate.HostBytes - (1L << 30), o.OverBy);
    }

    [Fact]
    public void ChosenIsTheBestFittingCandidateForEachObjective()
    {
        foreach (Objective objective in Enum.GetValues<Objective>())
        {
            TrainingPlan plan = Planner.Plan(Llama7B, new Workload(2048), Gpu24, new Constraints(), objective);
            Candidate chosen = plan.ChosenCandidate!;
            var fits = plan.Candidates.Where(c => c.Fits).ToList();
            Assert.All(fits, c => Assert.True(c.Estimate.PeakBytes <= Gpu24.Vram));
            switch (objective)
            {
                case Objective.Memory: Assert.Equal(fits.Min(c => c.Estimate.PeakBytes), chosen.Estimate.PeakBytes); break;
                case Objective.Speed: Assert.Equal(fits.Min(c => c.SpeedFactor), chosen.SpeedFactor); break;
                default: Assert.Equal(fits.Max(c => c.Quality), chosen.Quality); break;
            }
        }
    }

    [Theory]
    [InlineData("--method", "--weights")]
    public void FullMethodWithNf4IsAnErrorNamingBothFlags(string flag1, string flag2)
    {
        var e = Assert.Throws<PlanningException>(() => Planner.Plan(Llama7B, new Workload(), Gpu24,
            new Constraints { Method = TrainingMethod.Full, Weights = WeightFormat.Nf4 }));
        Assert.Contains(flag1, e.Message);
        Assert.Contains(flag2, e.Message);
    }

    [Fact]
    public void ContradictoryKnobsNameTheirFlags()
    {
        void Check(Constraints c, params string[] flags)
        {
            var e = Assert.Throws<PlanningException>(() => Planner.Plan(Llama7B, new Workload(), Gpu24, c));
            foreach (string f in flags) Assert.Contains(f, e.Message);
        }
        Check(new Constraints { Method = TrainingMethod.Lora, LisaLayers = 2 }, "--lisa-layers", "--method");
        Check(new Constraints { Method = TrainingMethod.Lora, Optimizer = OptimizerKind.Galore }, "--optimizer", "--method");
        Check(new Constraints { Method = TrainingMethod.Galore, Optimizer = OptimizerKind.AdamW }, "--method", "--optimizer");
        Check(new Constraints { Method = TrainingMethod.Lora, Prune = 0.5 }, "--prune", "--method");
        Check(new Constraints { Method = TrainingMethod.Lora, Layerwise = true }, "--layerwise", "--method");
        Check(new Constraints { Weights = WeightFormat.Bf16, DoubleQuant = true }, "--double-quant", "--weights");
        Check(new Constraints { Method = TrainingMethod.Full, Targets = TargetModules.Attn }, "--targets", "--method");
        Check(new Constraints { Method = TrainingMethod.Full, Rank = 8 }, "--rank", "--method");
        Assert.Contains("--grad-accum", Assert.Throws<PlanningException>(() =>
            Planner.Plan(Llama7B, new Workload(GradAccum: 4), Gpu24, new Constraints { Layerwise = true })).Message);
    }

    [Fact]
    public void BudgetBelowOverheadIsAnError()
    {
        var e = Assert.Throws<PlanningException>(() => Planner.Plan(Llama7B, new Workload(), new Budget { Vram = 500L << 20 }, new Constraints()));
        Assert.Contains("--vram", e.Message);
        Assert.Contains("--overhead", e.Message);
    }

    [Fact]
    public void OneKnobNarrowsTheSearchToItsMethod()
    {
        TrainingPlan plan = Planner.Plan(Llama7B, new Workload(), Gpu24, new Constraints { Prune = 0.85 });
        Assert.All(plan.Candidates, c => Assert.Equal(TrainingMethod.Loram, c.Strategy.Method));
    }

    // Published claims (QLoRA, LoRAM, LISA, LQ-LoRA papers) as bounds.
    [Fact]
    public void PublishedCapacityClaimsHold()
    {
        var w = new Workload(512);
        // QLoRA: LLaMA-7B QLoRA fits comfortably on 24 GB.
        Assert.NotNull(Planner.Plan(Llama7B, w, Gpu24, AllFixed).Chosen);
        // LISA: full-parameter 7B (fp32 AdamW, no memory tricks) needs at least 60 GB.
        var full = AllFixed with { Method = TrainingMethod.Full, Weights = WeightFormat.Bf16, DoubleQuant = false, Rank = null,
            Targets = null, Optimizer = OptimizerKind.AdamW, Checkpointing = false };
        Assert.True(Planner.Plan(Llama7B, w, new Budget(), full).Candidates[0].Estimate.PeakBytes >= 60_000_000_000L);
        // LISA: 7B training in 24 GB without offloading (γ = 2, 8-bit states, layer-wise, checkpointing).
        var lisa = new Constraints { Method = TrainingMethod.Lisa, LisaLayers = 2, Checkpointing = true };
        Assert.NotNull(Planner.Plan(Llama7B, w, new Budget { Vram = 24_000_000_000L }, lisa).Chosen);
        // GaLore: 7B with 8-bit GaLore, rank 1024, layer-wise updates fits an RTX 4090 (24 GB).
        var galore = new Constraints { Method = TrainingMethod.Galore, Optimizer = OptimizerKind.Galore8bit, Rank = 1024, Layerwise = true, Batch = 1 };
        Assert.NotNull(Planner.Plan(Llama7B, new Workload(256), new Budget { Vram = 24_000_000_000L }, galore).Chosen);
        // LoRAM: LLaMA-2-70B trains on a 20 GB GPU (QLoRAM, pruning 0.85).
        var loram = new Constraints { Method = TrainingMethod.Loram, Prune = 0.85, Weights = WeightFormat.Nf4, Checkpointing = true, Batch = 1 };
        Assert.NotNull(Planner.Plan(ModelPresets.Get("llama-2-70b"), w, new Budget { Vram = 20_000_000_000L }, loram).Chosen);
    }
}
