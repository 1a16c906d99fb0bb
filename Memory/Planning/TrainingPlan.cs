using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.CostModel;

namespace QuantPeft.Memory.Planning;

/// <summary>Why a candidate does not fit: the budget, the component during which the running total crossed it, and by how much the peak exceeds it.</summary>
/// <param name="Budget"><c>vram</c> or <c>ram</c>.</param>
/// <param name="Component">The component that crossed the budget.</param>
/// <param name="OverBy">Bytes above the budget.</param>
/// <param name="Message">A one-line explanation.</param>
public sealed record Overflow(string Budget, MemoryComponent Component, long OverBy, string Message);

/// <summary>One priced strategy.</summary>
public sealed class Candidate
{
    /// <summary>The strategy.</summary>
    public required Strategy Strategy { get; init; }
    /// <summary>Its predicted memory.</summary>
    public required MemoryEstimate Estimate { get; init; }
    /// <summary>Budget overflows (empty when it fits).</summary>
    public required IReadOnlyList<Overflow> Overflows { get; init; }
    /// <summary>Quality points (<see cref="Ranking.Quality"/>).</summary>
    public required double Quality { get; init; }
    /// <summary>Relative time per token (<see cref="Ranking.SpeedFactor"/>).</summary>
    public required double SpeedFactor { get; init; }
    /// <summary>Whether every budget holds.</summary>
    public bool Fits => Overflows.Count == 0;
}

/// <summary>The planner's answer: every candidate in rank order and the recommended one.</summary>
public sealed class TrainingPlan
{
    /// <summary>The model's name (preset or path).</summary>
    public required string Model { get; init; }
    /// <summary>The architecture.</summary>
    public required ModelSpec Spec { get; init; }
    /// <summary>The workload planned for.</summary>
    public required Workload Workload { get; init; }
    /// <summary>The budget planned for.</summary>
    public required Budget Budget { get; init; }
    /// <summary>The ranking objective.</summary>
    public required Objective Objective { get; init; }
    /// <summary>Candidates: fitting ones first in objective order, then rejected ones by smallest overflow.</summary>
    public required IReadOnlyList<Candidate> Candidates { get; init; }
    /// <summary>Index of the recommended candidate, or null when none fits.</summary>
    public int? Chosen => Candidates.Count > 0 && Candidates[0].Fits ? 0 : null;
    /// <summary>The recommended candidate, or null.</summary>
    public Candidate? ChosenCandidate => Chosen is { } i ? Candidates[i] : null;
}
