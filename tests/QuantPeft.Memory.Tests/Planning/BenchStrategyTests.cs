using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Planning;

public sealed class BenchStrategyTests
{
    [Fact]
    public void EveryShorthandPricesAsExactlyOneCandidate()
    {
        var spec = ModelPresets.Get("tinyllama-1.1b");
        foreach (var (name, _) in BenchStrategy.Shorthands)
        {
            BenchStrategy s = BenchStrategy.Parse(name);
            TrainingPlan plan = Planner.Plan(spec, new Workload(64), new Budget { DeviceKind = DeviceKind.Cpu }, s.Constraints with { Batch = 1 });
            Assert.Single(plan.Candidates);
        }
    }

    [Fact]
    public void ShorthandsMeanTheirDocumentedKnobs()
    {
        Constraints q = BenchStrategy.Parse("qlora-ckpt").Constraints;
        Assert.Equal((TrainingMethod.Lora, WeightFormat.Nf4, true, true, 8, TargetModules.AllLinear, OptimizerKind.AdamW),
            (q.Method!.Value, q.Weights!.Value, q.DoubleQuant!.Value, q.Checkpointing!.Value, q.Rank!.Value, q.Targets!.Value, q.Optimizer!.Value));
        Constraints g = BenchStrategy.Parse("galore8-layerwise").Constraints;
        Assert.Equal((TrainingMethod.Galore, OptimizerKind.Galore8bit, true, 128, false), (g.Method!.Value, g.Optimizer!.Value, g.Layerwise!.Value, g.Rank!.Value, g.DoubleQuant!.Value));
        Assert.Equal(BenchStrategy.Parse("qlora").Constraints, BenchStrategy.Parse("method=lora,weights=nf4").Constraints);
    }

    [Fact]
    public void ListSplitsShorthandsAndKnobStrings()
    {
        var list = BenchStrategy.ParseList("lora-bf16, method=lora,weights=nf4,dq=off,ckpt=on,targets=q+v,rank=16,qlora,method=lisa,lisa=4");
        Assert.Equal(["lora-bf16", "method=lora,weights=nf4,dq=off,ckpt=on,targets=q+v,rank=16", "qlora", "method=lisa,lisa=4"], list.Select(s => s.Name));
        Constraints c = list[1].Constraints;
        Assert.Equal((false, true, TargetModules.Q | TargetModules.V, 16), (c.DoubleQuant!.Value, c.Checkpointing!.Value, c.Targets!.Value, c.Rank!.Value));
        Assert.Equal(4, list[3].Constraints.LisaLayers);
    }

    [Theory]
    [InlineData("qlora,qlorax", "unknown strategy 'qlorax'")]
    [InlineData("ckpt=on,qlora", "'ckpt=on' is a knob outside a knob string")]
    [InlineData("method=lora,colour=red", "unknown knob 'colour'")]
    [InlineData("method=lora,ckpt=maybe", "ckpt: expected on or off")]
    [InlineData("method=full,rank=8", "rank does not apply to method=full")]
    [InlineData("method=lora,prune=0.5", "prune 0.5 does not apply to method=lora")]
    [InlineData("qlora,qlora", "'qlora' is listed twice")]
    [InlineData(" , ", "expected at least one strategy")]
    public void BadSpellingsAreRefusedNamingTheFlag(string text, string message)
    {
        var e = Assert.Throws<PlanningException>(() => BenchStrategy.ParseList(text));
        Assert.StartsWith("--strategies", e.Message);
        Assert.Contains(message, e.Message);
    }
}
