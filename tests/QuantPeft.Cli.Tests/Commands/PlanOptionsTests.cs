using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;

namespace QuantPeft.Cli.Tests.Commands;

// The Strategy <-> FinetuneOptions mapping (Trainers/Recipes/PlanOptions.cs) that makes the plan the trainer's only source of strategy choices.
public class PlanOptionsTests
{
    private static readonly FinetuneOptions Trainer = new()
    {
        ModelFolder = "m", DataPath = "d.jsonl", LearningRate = 1e-4, Steps = 7, Alpha = 32, Seed = 5, LisaInterval = 9, PruneCriterion = "magnitude",
    };

    [Fact]
    public void EveryStrategyThePlannerSearchesSurvivesTheRoundTrip()
    {
        // The open search covers every method, format, optimizer, rank, γ, prune ratio, switch and batch the planner produces.
        var spec = ModelPresets.Get("llama-2-70b");
        var plan = Planner.Plan(spec, new Workload(1024), new Budget { Vram = 24L << 30 }, new Constraints());
        var workload = new Workload(1024, 1);
        foreach (Strategy s in plan.Candidates.Select(c => c.Strategy))
        {
            FinetuneOptions o = PlanOptions.Apply(Trainer, s, workload);
            Assert.Equal(s, PlanOptions.ToStrategy(o));
            Assert.Equal(workload, PlanOptions.ToWorkload(o));
        }
        // Each adapter method without a method-only knob adds 3 formats × 3 ranks × 3 optimizers × 2 checkpointing × 4 batches = 216.
        // EVA, LoRA-GA, DyLoRA, NLoRA: 4 × 216 more; RandLoRA searches one rank: 72.
        Assert.Equal(3136, plan.Candidates.Count);
        // Fixed knobs the open search leaves at one value: eager attention, fp4, DQ off, explicit target lists, accumulation.
        var odd = new Strategy
        {
            Method = TrainingMethod.Dora, Weights = WeightFormat.Fp4, DoubleQuant = false, Rank = 32, Targets = TargetModules.Q | TargetModules.Down,
            Optimizer = OptimizerKind.PagedAdamW, Attention = AttentionKind.Eager, Batch = 3, ChunkedLoss = true, Checkpointing = true,
        };
        Assert.Equal(odd, PlanOptions.ToStrategy(PlanOptions.Apply(Trainer, odd, new Workload(77, 4))));
        Assert.Equal(new Workload(77, 4), PlanOptions.ToWorkload(PlanOptions.Apply(Trainer, odd, new Workload(77, 4))));
    }

    [Fact]
    public void EachStrategyFieldLandsOnItsOptionAndTrainerSettingsStay()
    {
        var galore = new Strategy
        {
            Method = TrainingMethod.Galore, Weights = WeightFormat.Bf16, Rank = 512, Optimizer = OptimizerKind.Galore8bit, Layerwise = true,
            Checkpointing = true, Attention = AttentionKind.Eager, Batch = 4, ChunkedLoss = true,
        };
        FinetuneOptions o = PlanOptions.Apply(Trainer, galore, new Workload(256, 1));
        Assert.Equal((TrainingMethod.Galore, WeightFormat.Bf16, 0.0, false, 512, OptimizerKind.Galore8bit, true, true, AttentionImplementation.Eager, 4, 256, 1),
            (o.Method, o.Weights, o.LqLoraBits, o.DoubleQuant, o.Rank, o.Optimizer, o.Layerwise, o.Checkpointing, o.Attention, o.MicroBatchSize, o.SequenceLength, o.GradientAccumulation));
        Assert.Equal((0, 0.0), (o.LisaLayers, o.Prune));
        Assert.Equal(("d.jsonl", 1e-4, 7, 32.0, 5L, 9, "magnitude"), (o.DataPath, o.LearningRate, o.Steps, o.Alpha, o.Seed, o.LisaInterval, o.PruneCriterion));

        var lisa = new Strategy { Method = TrainingMethod.Lisa, Weights = WeightFormat.Bf16, LisaLayers = 4, Optimizer = OptimizerKind.PagedAdamW, Batch = 1, ChunkedLoss = true };
        Assert.Equal(4, PlanOptions.Apply(Trainer, lisa, new Workload(64)).LisaLayers);
        var loram = new Strategy
        {
            Method = TrainingMethod.Loram, Weights = WeightFormat.Nf4, DoubleQuant = true, Rank = 16, Targets = TargetModules.Attn, Prune = 0.85,
            Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = true,
        };
        FinetuneOptions l = PlanOptions.Apply(Trainer, loram, new Workload(64));
        Assert.Equal((0.85, 16, true), (l.Prune, l.Rank, l.DoubleQuant));
        // attn is spelled out for the trainer, which reads projection names.
        Assert.Equal(["q,k,v,o"], l.Targets);
        var lq = loram with { Method = TrainingMethod.Lora, Weights = WeightFormat.LqLora, LqLoraBits = 2.75, DoubleQuant = false, Prune = 0 };
        Assert.Equal((WeightFormat.LqLora, 2.75), (PlanOptions.Apply(Trainer, lq, new Workload(64)).Weights, PlanOptions.Apply(Trainer, lq, new Workload(64)).LqLoraBits));
    }

    [Fact]
    public void WhatTheTrainerHasNoSwitchForIsRefusedNamingTheField()
    {
        var s = new Strategy { Method = TrainingMethod.Lora, Weights = WeightFormat.Nf4, Rank = 8, Targets = TargetModules.AllLinear, Optimizer = OptimizerKind.AdamW, Batch = 1, ChunkedLoss = false };
        Assert.StartsWith("chunked_loss:", Assert.Throws<RecipeException>(() => PlanOptions.Apply(Trainer, s, new Workload(64))).Message);
        Assert.StartsWith("adapter_dropout:", Assert.Throws<RecipeException>(() => PlanOptions.Apply(Trainer, s with { ChunkedLoss = true }, new Workload(64, 1, 0.05))).Message);
    }

    [Fact]
    public void OptionsFromFlagsMapToTheNeutralStrategyValues()
    {
        // The trainer's defaults (double quant on, rank 8, all-linear) mean nothing for a bf16 full fine-tune.
        Strategy full = PlanOptions.ToStrategy(Trainer with { Method = TrainingMethod.Full, Weights = WeightFormat.Bf16, DoubleQuant = true, Targets = ["q_proj", "v_proj"] });
        Assert.Equal((false, 0, TargetModules.None), (full.DoubleQuant, full.Rank, full.Targets));
        Strategy lora = PlanOptions.ToStrategy(Trainer with { Targets = ["q_proj", "v_proj", "down"] });
        Assert.Equal(TargetModules.Q | TargetModules.V | TargetModules.Down, lora.Targets);
        Assert.True(lora.ChunkedLoss);
    }
}
