using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Presets;

/// <summary>
/// Architectures of well-known models, as their published Hugging Face <c>config.json</c> files give them,
/// so that a plan can be made without downloading anything.
/// </summary>
public static class ModelPresets
{
    private static readonly Dictionary<string, ModelSpec> Table = new(StringComparer.OrdinalIgnoreCase)
    {
        ["llama-2-7b"] = Llama(32, 4096, 11008, 32, 32, 32000, 4096, 10000.0),
        ["llama-2-13b"] = Llama(40, 5120, 13824, 40, 40, 32000, 4096, 10000.0),
        ["llama-2-70b"] = Llama(80, 8192, 28672, 64, 8, 32000, 4096, 10000.0),
        ["llama-3-8b"] = Llama(32, 4096, 14336, 32, 8, 128256, 8192, 500000.0),
        ["llama-3.1-8b"] = Llama(32, 4096, 14336, 32, 8, 128256, 131072, 500000.0) with { RopeScaling = Llama31Rope },
        ["llama-3.1-70b"] = Llama(80, 8192, 28672, 64, 8, 128256, 131072, 500000.0) with { RopeScaling = Llama31Rope },
        ["mistral-7b"] = Llama(32, 4096, 14336, 32, 8, 32000, 32768, 10000.0) with { ModelType = "mistral" },
        ["tinyllama-1.1b"] = Llama(22, 2048, 5632, 32, 4, 32000, 2048, 10000.0),
        ["qwen2.5-0.5b"] = Qwen(24, 896, 4864, 14, 2, 151936, tied: true, 1e-6),
        ["qwen2.5-7b"] = Qwen(28, 3584, 18944, 28, 4, 152064, tied: false, 1e-6),
        ["qwen2.5-14b"] = Qwen(48, 5120, 13824, 40, 8, 152064, tied: false, 1e-5),
        ["qwen2.5-32b"] = Qwen(64, 5120, 27648, 40, 8, 152064, tied: false, 1e-5),
        ["qwen2.5-72b"] = Qwen(80, 8192, 29568, 64, 8, 152064, tied: false, 1e-5),
    };

    private static readonly RopeScaling Llama31Rope = new("llama3", 8.0, 1.0, 4.0, 8192);

    /// <summary>Every preset name, in a stable order.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3.1-8b", "llama-3.1-70b", "mistral-7b",
        "tinyllama-1.1b", "qwen2.5-0.5b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b",
    ];

    /// <summary>Whether <paramref name="name"/> is a preset.</summary>
    public static bool Contains(string name) => Table.ContainsKey(name);

    /// <summary>The architecture of preset <paramref name="name"/> (case-insensitive).</summary>
    /// <exception cref="PlanningException">Unknown name; the message lists every preset.</exception>
    public static ModelSpec Get(string name) =>
        Table.TryGetValue(name.Trim(), out ModelSpec? spec)
            ? spec
            : throw new PlanningException($"model: unknown preset '{name}'; known presets: {string.Join(", ", Names)} (or a path to a config.json / model folder)");

    private static ModelSpec Llama(int layers, int hidden, int inter, int heads, int kv, int vocab, int maxPos, double theta) => new()
    {
        ModelType = "llama", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = vocab, MaxPositionEmbeddings = maxPos, RopeTheta = theta,
        RmsNormEps = 1e-5,
    };

    // Qwen2 (and 2.5) projections q/k/v carry biases; rope_theta 1e6; the 0.5B (and 1.5B/3B) tie the head to the embedding.
    private static ModelSpec Qwen(int layers, int hidden, int inter, int heads, int kv, int vocab, bool tied, double eps) => new()
    {
        ModelType = "qwen2", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = vocab, TieWordEmbeddings = tied, AttentionBias = true, RopeTheta = 1_000_000.0,
        RmsNormEps = eps, MaxPositionEmbeddings = tied ? 32768 : 131072,
    };
}
