using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Formats;
using QuantPeft.Optimizers;
using QuantPeft.Trainers.Data;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>Where a run stands after an optimizer step: everything besides tensors that a resume needs.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="TotalSteps">The run's <c>--steps</c> when it was written (the schedule's length).</param>
/// <param name="MicroBatches">Micro-batches consumed so far.</param>
/// <param name="Epoch">Epoch of the next micro-batch (0-based).</param>
/// <param name="Position">Index of the next micro-batch within that epoch's seeded order.</param>
/// <param name="BatchesPerEpoch">Micro-batches per epoch, a check that the data splits the same way.</param>
/// <param name="LearningRate">The learning rate of the last step (the schedule position, for reading).</param>
/// <param name="Fingerprint">The run's <see cref="TrainingFingerprint"/>.</param>
/// <param name="TorchRngState">The CPU generator's state (base64), which dropout and random initialisations draw from.</param>
public sealed record CheckpointState(
    [property: JsonPropertyName("step")] int Step,
    [property: JsonPropertyName("total_steps")] int TotalSteps,
    [property: JsonPropertyName("micro_batches")] long MicroBatches,
    [property: JsonPropertyName("epoch")] int Epoch,
    [property: JsonPropertyName("position")] int Position,
    [property: JsonPropertyName("batches_per_epoch")] int BatchesPerEpoch,
    [property: JsonPropertyName("learning_rate")] double LearningRate,
    [property: JsonPropertyName("fingerprint")] SortedDictionary<string, string> Fingerprint,
    [property: JsonPropertyName("torch_rng_state")] string TorchRngState);

/// <summary>
/// A resumable checkpoint, <c>checkpoint-&lt;step&gt;/</c> in the run folder: <c>trainable.safetensors</c> (every
/// trainable tensor by its parameter name, whatever the method), <c>optimizer.qpa</c>
/// (<see cref="OptimizerStateArchive"/>) and <c>trainer_state.json</c> (<see cref="CheckpointState"/>).
/// </summary>
/// <remarks>
/// A checkpoint is built in a hidden temporary folder and renamed into place, so a run killed during a save
/// leaves either no <c>checkpoint-&lt;step&gt;</c> or a complete one; leftovers of a killed save are hidden
/// (<c>.checkpoint-*.tmp</c>), never picked by <see cref="Resolve"/>, and removed by the next save.
/// </remarks>
public static class TrainingCheckpoint
{
    /// <summary>Folder name prefix: <c>checkpoint-12</c>.</summary>
    public const string Prefix = "checkpoint-";

    /// <summary>The trainable tensors.</summary>
    public const string TensorsFileName = "trainable.safetensors";

    /// <summary>The optimizer state archive.</summary>
    public const string OptimizerFileName = "optimizer.qpa";

    /// <summary>Step, data position, schedule, fingerprint, RNG state.</summary>
    public const string StateFileName = "trainer_state.json";

    /// <summary>How many checkpoints a run keeps (the newest by step).</summary>
    public const int Keep = 2;

    private const string TempSuffix = ".tmp";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    /// <summary>Writes <c>checkpoint-&lt;step&gt;</c> into <paramref name="runFolder"/> atomically and keeps the newest <see cref="Keep"/>.</summary>
    /// <returns>The checkpoint folder.</returns>
    public static string Write(string runFolder, CheckpointState state, IReadOnlyList<(string Name, Tensor Tensor)> trainable, IOptimizer optimizer)
    {
        string root = Path.GetFullPath(runFolder);
        Directory.CreateDirectory(root);
        RemoveLeftovers(root);
        string target = Path.Combine(root, Prefix + state.Step.ToString(CultureInfo.InvariantCulture));
        string temp = Path.Combine(root, $".{Prefix}{state.Step}.{Guid.NewGuid():N}{TempSuffix}");
        try
        {
            Directory.CreateDirectory(temp);
            SafetensorsWriter.WriteFile(Path.Combine(temp, TensorsFileName),
                trainable.Select(t => SafetensorsModelSource.Entry(t.Name, t.Tensor)).ToList(),
                new Dictionary<string, string> { ["format"] = "pt" });
            OptimizerStateArchive.Save(optimizer, Path.Combine(temp, OptimizerFileName));
            AtomicFile.WriteAllBytes(Path.Combine(temp, StateFileName), JsonSerializer.SerializeToUtf8Bytes(state, Json));
            if (Directory.Exists(target))
            {
                // A resumed run reaching a step it had saved before: the new save replaces the old one.
                string old = temp + ".old";
                Directory.Move(target, old);
                Directory.Move(temp, target);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(temp, target);
            }
        }
        catch
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
            throw;
        }
        foreach (var (_, stale) in List(root).SkipLast(Keep))
            Directory.Delete(stale, recursive: true);
        return target;
    }

    /// <summary>The complete checkpoints of a run folder, oldest step first.</summary>
    public static IReadOnlyList<(int Step, string Folder)> List(string runFolder)
    {
        if (!Directory.Exists(runFolder)) return [];
        var found = new List<(int, string)>();
        foreach (var dir in Directory.EnumerateDirectories(runFolder, Prefix + "*"))
        {
            string name = Path.GetFileName(dir);
            if (int.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out int step)
                && File.Exists(Path.Combine(dir, StateFileName)))
                found.Add((step, dir));
        }
        return [.. found.OrderBy(f => f.Item1)];
    }

    /// <summary>
    /// The checkpoint folder that <c>--resume PATH</c> means: PATH itself when it holds <c>trainer_state.json</c>,
    /// otherwise the newest <c>checkpoint-&lt;step&gt;</c> in PATH (a run folder).
    /// </summary>
    /// <exception cref="RecipeException">PATH does not exist, or is neither a checkpoint nor a run folder with one.</exception>
    public static string Resolve(string path)
    {
        if (!Directory.Exists(path))
            throw new RecipeException($"--resume: '{path}' does not exist; expected a checkpoint folder or a run folder");
        if (File.Exists(Path.Combine(path, StateFileName))) return Path.GetFullPath(path);
        var all = List(path);
        if (all.Count == 0)
            throw new RecipeException($"--resume: '{path}' has no {StateFileName} and no {Prefix}<step> folder; expected a checkpoint folder or a run folder");
        return Path.GetFullPath(all[^1].Folder);
    }

    /// <summary>The run folder a checkpoint belongs to (its parent).</summary>
    public static string RunFolderOf(string checkpoint) => Path.GetDirectoryName(Path.GetFullPath(checkpoint).TrimEnd(Path.DirectorySeparatorChar))!;

    /// <summary>Reads <c>trainer_state.json</c> of a checkpoint folder.</summary>
    /// <exception cref="RecipeException">The file is missing or not a checkpoint state; the message names it.</exception>
    public static CheckpointState ReadState(string checkpoint)
    {
        string path = Path.Combine(checkpoint, StateFileName);
        if (!File.Exists(path)) throw new RecipeException($"--resume: '{checkpoint}': missing {StateFileName}");
        try
        {
            var state = JsonSerializer.Deserialize<CheckpointState>(File.ReadAllBytes(path), Json);
            if (state is null || state.Fingerprint is null || state.TorchRngState is null || state.Step < 0 || state.BatchesPerEpoch < 1)
                throw new RecipeException($"{path}: not a checkpoint state (step, batches_per_epoch, fingerprint and torch_rng_state are required)");
            return state;
        }
        catch (JsonException e)
        {
            throw new RecipeException($"{path}: not a checkpoint state ({e.Message})");
        }
    }

    /// <summary>
    /// Copies every trainable tensor of <paramref name="checkpoint"/> into <paramref name="trainable"/>; the name sets
    /// and every shape and dtype must match.
    /// </summary>
    /// <exception cref="RecipeException">A tensor is missing, extra, or of another shape or dtype; the message names it and the file.</exception>
    public static void LoadTensors(string checkpoint, IReadOnlyList<(string Name, Tensor Tensor)> trainable)
    {
        string path = Path.Combine(checkpoint, TensorsFileName);
        if (!File.Exists(path)) throw new RecipeException($"--resume: '{checkpoint}': missing {TensorsFileName}");
        using var source = new SafetensorsModelSource(path);
        var stored = source.Names.ToHashSet(StringComparer.Ordinal);
        var wanted = trainable.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        if (stored.Except(wanted).FirstOrDefault() is string extra)
            throw new RecipeException($"{path}: tensor '{extra}' is not trainable in this run ({wanted.Count} trainable tensors, {stored.Count} stored)");
        using var noGrad = no_grad();
        foreach (var (name, target) in trainable)
        {
            if (!stored.Contains(name)) throw new RecipeException($"{path}: missing tensor '{name}'");
            using var value = source.Get(name);
            if (!value.shape.SequenceEqual(target.shape) || value.dtype != target.dtype)
                throw new RecipeException($"{path}: tensor '{name}' is {value.dtype} [{string.Join(", ", value.shape)}], this run's is {target.dtype} [{string.Join(", ", target.shape)}]");
            target.copy_(value);
        }
    }

    /// <summary>The CPU generator's state as base64.</summary>
    public static string CaptureRng()
    {
        using var generator = Generator.Default;
        using var state = generator.get_state();
        return Convert.ToBase64String(state.bytes);
    }

    /// <summary>Restores a state from <see cref="CaptureRng"/>.</summary>
    public static void RestoreRng(string base64)
    {
        byte[] bytes = Convert.FromBase64String(base64);
        using var generator = Generator.Default;
        using var state = empty(bytes.Length, ScalarType.Byte);
        bytes.CopyTo(state.bytes);
        generator.set_state(state);
    }

    /// <summary>
    /// Prepares <paramref name="metricsPath"/> for a resumed run: the lines of <paramref name="sourceMetrics"/> up to
    /// and including <paramref name="step"/> (the steps a resumed run will log again are dropped), written atomically.
    /// </summary>
    public static void ContinueMetrics(string sourceMetrics, string metricsPath, int step)
    {
        var kept = !File.Exists(sourceMetrics) ? [] : File.ReadLines(sourceMetrics).Where(line => StepOf(line) is int s && s <= step).ToList();
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(metricsPath))!);
        AtomicFile.WriteAllBytes(metricsPath, System.Text.Encoding.UTF8.GetBytes(string.Concat(kept.Select(l => l + "\n"))));
    }

    private static int? StepOf(string line)
    {
        try
        {
            using var doc = JsonDocument.Parse(line);
            return doc.RootElement.TryGetProperty("step", out var s) && s.TryGetInt32(out int v) ? v : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static void RemoveLeftovers(string root)
    {
        foreach (var dir in Directory.EnumerateDirectories(root, $".{Prefix}*"))
            if (dir.EndsWith(TempSuffix, StringComparison.Ordinal) || dir.EndsWith(TempSuffix + ".old", StringComparison.Ordinal))
                Directory.Delete(dir, recursive: true);
    }
}
