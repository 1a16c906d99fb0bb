using QuantPeft.Formats;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Reports.Handoff;

/// <summary>The files of one hand-off, rendered in full before any is written, then each written atomically.</summary>
public static class HandoffFiles
{
    /// <summary>Path and content of every file <paramref name="engine"/> needs for <paramref name="c"/>.</summary>
    /// <param name="engine">The engine.</param>
    /// <param name="path">The <c>--engine-config</c> path.</param>
    /// <param name="plan">The plan.</param>
    /// <param name="c">The candidate to reproduce.</param>
    /// <param name="baseModel">The Hub repository or local folder the engine loads.</param>
    public static IReadOnlyList<(string Path, string Content)> Render(HandoffEngine engine, string path, ShardedPlan plan, ShardedCandidate c, string baseModel) =>
        engine == HandoffEngine.Axolotl
            ? [(path, AxolotlConfig.Write(plan, c, baseModel))]
            : [(path, AccelerateConfig.WriteFsdpConfig(plan, c)),
               (AccelerateConfig.TrainingArgumentsPath(path), AccelerateConfig.WriteTrainingArguments(plan, c, baseModel))];

    /// <summary>Writes rendered files, each atomically (a temporary file renamed over the target).</summary>
    public static void Write(IEnumerable<(string Path, string Content)> files)
    {
        foreach (var (path, content) in files) AtomicFile.WriteAllText(path, content);
    }
}
