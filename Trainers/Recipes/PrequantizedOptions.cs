using System.Globalization;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Adapters.Methods;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// Makes a run's options agree with a pre-quantized model folder: the folder decides the weights format (and for
/// bitsandbytes the double quantization, for LQ-LoRA the rank and the targets), so a flag left at its default takes the
/// folder's value and a flag that contradicts it is an error naming the flag and the folder's format. Methods that need
/// the full-precision weight (PiSSA, OSoRA, LoRAM's pruning, the full-parameter methods) are refused.
/// </summary>
public static class PrequantizedOptions
{
    /// <summary>Which of the folder-decided flags the user set explicitly (the others are taken from the folder).</summary>
    /// <param name="Weights"><c>--weights</c> was given.</param>
    /// <param name="DoubleQuant"><c>--double-quant</c> was given.</param>
    /// <param name="Rank"><c>--rank</c> was given.</param>
    public sealed record Given(bool Weights, bool DoubleQuant, bool Rank)
    {
        /// <summary>Every flag counts as given: the options must already agree with the folder.</summary>
        public static Given All { get; } = new(true, true, true);
    }

    /// <summary>
    /// The options with the folder's format filled in, or unchanged when <paramref name="options"/>' model is not a
    /// pre-quantized folder.
    /// </summary>
    /// <exception cref="RecipeException">A given flag or the method contradicts the folder; the message names both.</exception>
    public static FinetuneOptions Align(FinetuneOptions options, Given given)
    {
        var folder = PrequantizedFolder.Read(options.ModelFolder);
        return folder is null ? options : Align(options, folder, given);
    }

    /// <summary>Checks that <paramref name="options"/> agree with their model folder (when it is pre-quantized).</summary>
    /// <exception cref="RecipeException">They do not; the message names the flag and the folder's format.</exception>
    public static void Check(FinetuneOptions options) => Align(options, Given.All);

    private static FinetuneOptions Align(FinetuneOptions o, PrequantizedFolder folder, Given given)
    {
        string where = $"MODEL folder '{folder.Folder}' is pre-quantized as {folder.Describe()}";
        CheckMethod(o, folder, where);
        if (given.Weights && !SameWeights(o, folder))
            throw new RecipeException($"--weights {Knob.Name(o.Weights, o.LqLoraBits)}: {where}; drop --weights or pass --weights {folder.WeightsName}");
        if (folder.Weights == WeightFormat.LqLora)
        {
            if (given.Rank && o.Rank != folder.LqLoraRank)
                throw new RecipeException($"--rank {o.Rank}: {where}, and its factors L1·L2 start the LoRA; drop --rank or pass --rank {folder.LqLoraRank}");
            var targets = ModelAdapters.ResolveTargets(o.Targets);
            if (ModelAdapters.AllLinear.Any(t => !targets.Contains(t)))
                throw new RecipeException($"--targets {string.Join(",", o.Targets)}: {where}, and every projection's L1·L2 starts its LoRA; use --targets all-linear");
            return o with { Weights = WeightFormat.LqLora, LqLoraBits = folder.LqLoraBits, Rank = folder.LqLoraRank };
        }
        if (given.DoubleQuant && o.DoubleQuant != folder.DoubleQuant)
            throw new RecipeException($"--double-quant {(o.DoubleQuant ? "on" : "off")}: {where}; drop --double-quant or pass --double-quant {(folder.DoubleQuant ? "on" : "off")}");
        return o with { Weights = folder.Weights, LqLoraBits = 0, DoubleQuant = folder.DoubleQuant };
    }

    // LQ-LoRA bits may be given as the folder's budget or as the average it achieved (as the plan prints it).
    private static bool SameWeights(FinetuneOptions o, PrequantizedFolder folder) =>
        o.Weights == folder.Weights && (folder.Weights != WeightFormat.LqLora
            || Math.Abs(o.LqLoraBits - folder.LqLoraBudget) < 1e-9
            || Knob.Name(o.Weights, o.LqLoraBits) == folder.WeightsName);

    private static void CheckMethod(FinetuneOptions o, PrequantizedFolder folder, string where)
    {
        string method = $"--method {Knob.Name(o.Method)}";
        string instead = $"train on the full-precision folder instead (the base is then quantized on load with --weights {(folder.Weights == WeightFormat.LqLora ? "lq-lora:" + folder.LqLoraBudget.ToString(CultureInfo.InvariantCulture) : folder.WeightsName)})";
        switch (o.Method)
        {
            case var m when AdapterRegistry.Has(m) && AdapterRegistry.Of(m).LoadInit is not null:
                throw new RecipeException($"{method}: its initialisation is an SVD of the full-precision weight, but {where}; {instead}");
            case TrainingMethod.Loram:
                throw new RecipeException($"{method}: it prunes the full-precision weights before quantizing them, but {where}; {instead}");
            case var m when !AdapterRegistry.Has(m):
                throw new RecipeException($"{method}: it trains the base weights in bf16, but {where}; use an adapter method (lora, dora, vera) or a full-precision folder");
            case not TrainingMethod.Lora when folder.Weights == WeightFormat.LqLora:
                throw new RecipeException($"{method}: {where}, whose factors L1·L2 start a LoRA; use --method lora");
        }
    }
}
