using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;

namespace QuantPeft.Memory.Tests.Planning;

public sealed class UncalibratedStrategiesTests
{
    private static readonly Budget Cpu8 = new() { Ram = 8L << 30, DeviceKind = DeviceKind.Cpu };

    private static IReadOnlyList<UncalibratedStrategy> DoraOut =>
        UncalibratedStrategies.Parse("""{"entries":[{"method":"dora","device_kind":"cpu","measured_error":-0.2,"cell":"test"}]}""", "test.json");

    [Fact]
    public void AnOpenSearchLeavesAnUncalibratedMethodOutAndAFixedOneIsStillPriced()
    {
        var spec = ModelPresets.Get("tinyllama-1.1b");
        var open = new Constraints { Weights = WeightFormat.Nf4, Rank = 64, Batch = 1, Checkpointing = true, Optimizer = OptimizerKind.AdamW };
        // Without the entry, quality ranks DoRA first at 8 GiB: the control that shows the entry is what removes it.
        TrainingPlan all = Planner.Plan(spec, new Workload(256), Cpu8, open, uncalibrated: []);
        Assert.Equal(TrainingMethod.Dora, all.ChosenCandidate!.Strategy.Method);
        TrainingPlan searched = Planner.Plan(spec, new Workload(256), Cpu8, open, uncalibrated: DoraOut);
        Assert.DoesNotContain(searched.Candidates, c => c.Strategy.Method == TrainingMethod.Dora);
        Assert.NotNull(searched.ChosenCandidate);
        Assert.Equal(all.Candidates.Count(c => c.Strategy.Method != TrainingMethod.Dora), searched.Candidates.Count);
        // On CUDA the entry does not apply.
        var cuda = new Budget { Vram = 24L << 30 };
        Assert.Equal(TrainingMethod.Dora, Planner.Plan(spec, new Workload(256), cuda, open, uncalibrated: DoraOut).ChosenCandidate!.Strategy.Method);
        // An entry from 512 tokens on leaves batch-1 × 256-token DoRA in and batch-2 out.
        var fromTokens = UncalibratedStrategies.Parse("""{"entries":[{"method":"dora","device_kind":"cpu","measured_error":-0.2,"cell":"t","min_tokens":512}]}""", "t.json");
        TrainingPlan shaped = Planner.Plan(spec, new Workload(256), Cpu8, open with { Batch = null }, uncalibrated: fromTokens);
        Assert.Contains(shaped.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && c.Strategy.Batch == 1);
        Assert.DoesNotContain(shaped.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && c.Strategy.Batch >= 2);
        // A method the caller fixes is priced as asked.
        TrainingPlan fixedDora = Planner.Plan(spec, new Workload(256), Cpu8, open with { Method = TrainingMethod.Dora }, uncalibrated: DoraOut);
        Assert.All(fixedDora.Candidates, c => Assert.Equal(TrainingMethod.Dora, c.Strategy.Method));
    }

    [Fact]
    public void AnEntryForCheckpointedRunsLeavesTheSameMethodWithoutCheckpointingIn()
    {
        var spec = ModelPresets.Get("tinyllama-1.1b");
        var open = new Constraints { Weights = WeightFormat.Nf4, Rank = 64, Batch = 1, Optimizer = OptimizerKind.AdamW };
        var ckptOut = UncalibratedStrategies.Parse("""{"entries":[{"method":"dora","device_kind":"cpu","measured_error":-0.25,"cell":"t","checkpointing":true}]}""", "t.json");
        TrainingPlan all = Planner.Plan(spec, new Workload(256), Cpu8, open, uncalibrated: []);
        // The control: both kinds of DoRA candidate exist without the entry.
        Assert.Contains(all.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && c.Strategy.Checkpointing);
        Assert.Contains(all.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && !c.Strategy.Checkpointing);
        TrainingPlan searched = Planner.Plan(spec, new Workload(256), Cpu8, open, uncalibrated: ckptOut);
        Assert.DoesNotContain(searched.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && c.Strategy.Checkpointing);
        Assert.Contains(searched.Candidates, c => c.Strategy.Method == TrainingMethod.Dora && !c.Strategy.Checkpointing);
        Assert.Equal("dora with checkpointing on cpu: measured -25.0 % at t", ckptOut[0].Describe());
    }

    [Fact]
    public void TheShippedListParsesAndAnEntryThatNamesNothingKnownIsRefused()
    {
        Assert.All(UncalibratedStrategies.Shipped, e => Assert.False(string.IsNullOrWhiteSpace(e.Cell)));
        var e1 = Assert.Throws<PlanningException>(() => UncalibratedStrategies.Parse("""{"entries":[{"method":"dora","device_kind":"tpu","measured_error":0.1,"cell":"x"}]}""", "u.json"));
        Assert.Equal("u.json: entries[0]: device_kind 'tpu' is not cpu or cuda", e1.Message);
        var e2 = Assert.Throws<PlanningException>(() => UncalibratedStrategies.Parse("""{"entries":[{"method":"dora","device_kind":"cpu","cell":"x"}]}""", "u.json"));
        Assert.Equal("u.json: entries[0]: missing field 'measured_error' (a number, or null for a strategy never measured)", e2.Message);
        // null: never measured; the entry still leaves the method out and says so.
        var never = UncalibratedStrategies.Parse("""{"entries":[{"method":"bone","device_kind":"cpu","measured_error":null,"cell":"no cell measured"}]}""", "u.json");
        Assert.Null(never[0].MeasuredError);
        Assert.Equal("bone on cpu: not measured (no cell measured)", never[0].Describe());
    }
}
