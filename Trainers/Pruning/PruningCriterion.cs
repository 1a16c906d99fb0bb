namespace QuantPeft.Trainers.Pruning;

/// <summary>How LoRAM chooses the key/value-head groups and MLP channels a pruned block keeps.</summary>
public enum PruningCriterion
{
    /// <summary>LoRAM-Rand: a seeded uniform choice, independent of the weights.</summary>
    Random,

    /// <summary>
    /// Structured magnitude (LLM-Pruner's <c>l2</c> importance with its <c>sum</c> group reduction): a unit's score is the
    /// sum of squares of every weight that leaves with it, and the highest-scoring units stay. Gradient-based (Taylor)
    /// importance would need calibration data and the whole model resident, which streaming rules out.
    /// </summary>
    Magnitude,
}

/// <summary>The CLI names of <see cref="PruningCriterion"/>.</summary>
public static class PruningCriteria
{
    /// <summary>Accepted values of <c>--prune-criterion</c>.</summary>
    public static IReadOnlyList<string> Names { get; } = ["random", "magnitude"];

    /// <summary>Parses a <c>--prune-criterion</c> value.</summary>
    /// <exception cref="PruningException">The name is not one of <see cref="Names"/>.</exception>
    public static PruningCriterion Parse(string name) => name.Trim().ToLowerInvariant() switch
    {
        "random" => PruningCriterion.Random,
        "magnitude" => PruningCriterion.Magnitude,
        _ => throw new PruningException($"--prune-criterion: expected one of {string.Join(", ", Names)}; found '{name}'"),
    };

    /// <summary>The CLI name of <paramref name="criterion"/>.</summary>
    public static string Name(PruningCriterion criterion) => criterion == PruningCriterion.Random ? "random" : "magnitude";
}
