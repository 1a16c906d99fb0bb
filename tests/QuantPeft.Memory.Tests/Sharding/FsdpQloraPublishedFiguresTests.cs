using System.Globalization;
using QuantPeft.Memory.CostModel;
using QuantPeft.Memory.Planning;
using QuantPeft.Memory.Presets;
using Xunit.Abstractions;

namespace QuantPeft.Memory.Tests.Sharding;

/// <summary>
/// The per-GPU prediction of <see cref="FsdpShardingCost"/> against Answer.AI's published FSDP-QLoRA figures:
/// AnswerDotAI/fsdp_qlora, benchmarks_03_2024.md (commit 05ed9f2a60f96a0795cb082bceab70a9b19fd213), the "Peak Memory
/// (GiB)" columns, measured on 2 × RTX 3090 and 2 × RTX 4090 with train.py. The 70B row is the figure behind the blog
/// post "You can now train a 70b language model at home" (answer.ai, 2024-03-06): Llama-2 70B QLoRA, CPU offload,
/// batch 2, context 2048, 14.92 GiB on each 24 GB card.
/// </summary>
/// <remarks>
/// Stated by the source and train.py's defaults: NF4 through bitsandbytes' <c>Linear4bit</c> (double quantization on by
/// its default), LoRA rank 64 on q, k, v, gate, up and down with dropout 0.1, <c>--precision bf16</c> (bf16 LoRA and
/// AdamW moments: <see cref="FsdpPrecision.AnswerAiBf16"/>), AdamW, FSDP full shard with FSDP's default backward
/// prefetch, gradient checkpointing of every decoder layer, SDPA attention, the Llama-2 loss over whole logits; the 7B
/// runs set <c>--use_cpu_offload False</c>, the 70B run offloads. The figure is <c>max_memory_reserved()</c>, so it is
/// compared with <see cref="ShardedEstimate.ReservedBytes"/> (no CUDA context).
/// Tolerance: every row within −35 % … +15 %. The prediction runs 13–28 % low on all five rows, and the causes are
/// known rather than fitted: the Hugging Face Llama of March 2024 upcast the whole logits to fp32 and copied them once
/// more for the label shift, whose fp32 gradients backward then holds as well (4 bytes or more per logit beyond what
/// <see cref="ActivationCost.LogitsBytes"/> prices: 2.4 GiB at batch 10 × 2048 on a 32,000 vocabulary); the caching
/// allocator holds more than the 5 % margin when blocks of very different sizes (gathered layers, logits) alternate;
/// and at batch 1 × 512 cuBLAS and NCCL workspaces are a large share of a small total. Nothing here is fitted to these rows.
/// </remarks>
public sealed class FsdpQloraPublishedFiguresTests(ITestOutputHelper output)
{
    private sealed record Row(string Label, string Model, int Batch, int Context, bool Offload, double PublishedGiB);

    private static readonly Row[] Rows =
    [
        new("Llama-2 70B, offload, b2, ctx 2048 (2×3090 and 2×4090)", "llama-2-70b", 2, 2048, true, 14.92),
        new("Llama-2 7B, b1, ctx 512 (2×3090)", "llama-2-7b", 1, 512, false, 4.98),
        new("Llama-2 7B, b1, ctx 2048 (2×3090)", "llama-2-7b", 1, 2048, false, 5.21),
        new("Llama-2 7B, b4, ctx 2048 (2×3090)", "llama-2-7b", 4, 2048, false, 11.22),
        new("Llama-2 7B, b10, ctx 2048 (2×3090 and 2×4090)", "llama-2-7b", 10, 2048, false, 20.97),
    ];

    /// <summary>The per-GPU prediction for one of Answer.AI's train.py configurations.</summary>
    public static ShardedEstimate Predict(string model, int batch, int context, bool offload)
    {
        var spec = ModelPresets.Get(model);
        var s = new Strategy
        {
            Weights = WeightFormat.Nf4, DoubleQuant = true, Method = TrainingMethod.Lora, Rank = 64,
            Targets = TargetModules.Q | TargetModules.K | TargetModules.V | TargetModules.Gate | TargetModules.Up | TargetModules.Down,
            Optimizer = OptimizerKind.AdamW, Checkpointing = true, Attention = AttentionKind.Fused, Batch = batch, ChunkedLoss = false,
        };
        return FsdpShardingCost.Estimate(ModelInventory.Build(spec), s, new Workload(context, 1, AdapterDropout: 0.1), new Budget(),
            new FsdpLayout(2, offload), FsdpPrecision.AnswerAiBf16, ShardedPlanner.EngineSettings);
    }

    [Fact]
    public void EveryRowIsWithinTheDocumentedBand()
    {
        output.WriteLine("| configuration | published reserved | predicted reserved | error |");
        output.WriteLine("|---|---:|---:|---:|");
        var failures = new List<string>();
        foreach (Row r in Rows)
        {
            double predicted = Predict(r.Model, r.Batch, r.Context, r.Offload).ReservedBytes / (double)(1L << 30);
            double error = (predicted - r.PublishedGiB) / r.PublishedGiB;
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {r.Label} | {r.PublishedGiB:0.00} GiB | {predicted:0.00} GiB | {error:+0.0%;-0.0%} |"));
            if (error < -0.35 || error > 0.15) failures.Add($"{r.Label}: predicted {predicted:0.00} GiB vs {r.PublishedGiB} GiB ({error:P1})");
        }
        Assert.Empty(failures);
    }

    [Fact]
    public void SeventyBillionOnTwentyFourGigabyteCardsFitsOnlyWithOffload()
    {
        // The source's own finding: the 70B run needed CPU offload on 24 GB cards. Without offload each rank holds
        // half the 4-bit base (about 17 GiB) plus everything else.
        long budget = 24L << 30;
        Assert.True(Predict("llama-2-70b", 2, 2048, offload: true).PeakBytes <= budget);
        Assert.True(Predict("llama-2-70b", 2, 2048, offload: false).PeakBytes > budget);
    }
}
