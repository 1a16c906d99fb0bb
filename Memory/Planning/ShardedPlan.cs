using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Planning;

/// <summary>One strategy priced per GPU under FSDP full sharding.</summary>
public sealed class ShardedCandidate
{
    /// <summary>The strategy; its batch is each GPU's micro-batch.</summary>
    public required Strategy Strategy { get; init; }
    /// <summary>Sharding and offload.</summary>
    public FsdpLayout Layout => Estimate.Layout;
    /// <summary>Its predicted per-GPU memory.</summary>
    public required ShardedEstimate Estimate { get; init; }
    /// <summary>Why it does not fit (empty when it fits), one line each.</summary>
    public required IReadOnlyList<string> Overflows { get; init; }
    /// <summary>Bytes by which the worst budget is exceeded (0 when it fits).</summary>
    public required long OverBy { get; init; }
    /// <summary>Quality points (<see cref="Ranking.Quality"/>).</summary>
    public required double Quality { get; init; }
    /// <summary>Relative time per token (<see cref="Ranking.SpeedFactor"/>, times the offload slowdown).</summary>
    public required double SpeedFactor { get; init; }
    /// <summary>Whether every budget holds.</summary>
    public bool Fits => Overflows.Count == 0;
    /// <summary>The strategy in command-line spelling plus the sharding, e.g. <c>lora r64 all-linear | nf4+dq | adamw | b1 ckpt | fsdp×2 offload</c>.</summary>
    public string Describe() => $"{Strategy.Describe()} | fsdp×{Layout.Gpus}{(Layout.OffloadParams ? " offload" : "")}";
}

/// <summary>The sharded planner's answer: candidates in rank order and the recommended one.</summary>
public sealed class ShardedPlan
{
    /// <summary>The model's name (preset or path).</summary>
    public required string Model { get; init; }
    /// <summary>The architecture.</summary>
    public required ModelSpec Spec { get; init; }
    /// <summary>GPUs the plan shards over.</summary>
    public required int Gpus { get; init; }
    /// <summary>The workload planned for (per GPU: the micro-batch is each rank's).</summary>
    public required Workload Workload { get; init; }
    /// <summary>The per-GPU budget (<see cref="Budget.Vram"/> is each GPU's) and the host budget.</summary>
    public required Budget Budget { get; init; }
    /// <summary>The ranking objective.</summary>
    public required Objective Objective { get; init; }
    /// <summary>Candidates: fitting ones first in objective order, then rejected ones by smallest overflow.</summary>
    public required IReadOnlyList<ShardedCandidate> Candidates { get; init; }
    /// <summary>The recommended candidate, or null when none fits.</summary>
    public ShardedCandidate? ChosenCandidate => Candidates.Count > 0 && Candidates[0].Fits ? Candidates[0] : null;
}
