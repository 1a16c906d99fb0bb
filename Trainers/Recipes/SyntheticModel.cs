using System.Globalization;
using QuantPeft.Formats;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Presets;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tokenizers;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A model reference <c>synthetic:NAME[@SEED]</c> that stands wherever a model folder does: NAME is a preset
/// (<c>llama-2-7b</c>, …) or a <c>config.json</c> (or a folder holding one); the weights come from a
/// <see cref="SyntheticTensorSource"/> seeded with SEED (default 0) and the tokenizer is the byte-level one, whose
/// ids (below 259) are valid in any vocabulary at least that large. It lets benchmarks train a 7B or 70B shape
/// with no checkpoint on disk.
/// </summary>
/// <param name="Reference">The reference as given.</param>
/// <param name="Spec">The architecture.</param>
/// <param name="Seed">The weight seed.</param>
public sealed record SyntheticModel(string Reference, ModelSpec Spec, ulong Seed)
{
    /// <summary>What a synthetic reference starts with.</summary>
    public const string Prefix = "synthetic:";

    /// <summary>Whether <paramref name="reference"/> names a synthetic model rather than a folder.</summary>
    public static bool IsSynthetic(string reference) => reference.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>Resolves <c>synthetic:NAME[@SEED]</c>.</summary>
    /// <exception cref="ModelException">NAME is neither a preset nor a readable config, SEED is not an integer, or the vocabulary is smaller than the byte-level tokenizer's.</exception>
    /// <exception cref="QuantPeftException">The config file is malformed (its reader's exception).</exception>
    public static SyntheticModel Parse(string reference)
    {
        if (!IsSynthetic(reference))
            throw new ModelException($"model '{reference}': a synthetic model reference starts with '{Prefix}'");
        string body = reference[Prefix.Length..];
        ulong seed = 0;
        int at = body.LastIndexOf('@');
        if (at >= 0)
        {
            string digits = body[(at + 1)..];
            if (!ulong.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out seed))
                throw new ModelException($"model '{reference}': the seed after '@' must be a non-negative integer, found '{digits}'");
            body = body[..at];
        }
        if (body.Length == 0)
            throw new ModelException($"model '{reference}': expected {Prefix}PRESET or {Prefix}PATH/config.json, e.g. {Prefix}llama-2-7b");
        var spec = ResolveSpec(reference, body);
        if (spec.VocabSize < ByteLevelTokenizer.Size)
            throw new ModelException($"model '{reference}': vocab_size {spec.VocabSize} is below the byte-level tokenizer's {ByteLevelTokenizer.Size} ids a synthetic model is fed with");
        return new SyntheticModel(reference, spec, seed);
    }

    /// <summary>The weights, generated tensor by tensor.</summary>
    public SyntheticTensorSource Source() => new(Spec, Seed, Reference);

    private static ModelSpec ResolveSpec(string reference, string name)
    {
        if (ModelPresets.Contains(name)) return ModelPresets.Get(name);
        string config = Directory.Exists(name) ? Path.Combine(name, ModelConfigReader.FileName) : name;
        if (File.Exists(config)) return ModelConfigReader.Read(config);
        throw new ModelException($"model '{reference}': '{name}' is neither a preset ({string.Join(", ", ModelPresets.Names)}) "
            + $"nor a {ModelConfigReader.FileName} or a folder holding one");
    }
}
