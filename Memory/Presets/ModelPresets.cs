using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;

namespace QuantPeft.Memory.Presets;

/// <summary>
/// Architectures of well-known models, as their published Hugging Face <c>config.json</c> files give them,
/// so that a plan can be made without downloading anything.
/// </summary>
public static class ModelPresets
{
    // Declared before the table: static initialisers run in text order, and the table reads these.
    private static readonly RopeScaling Llama31Rope = new("llama3", 8.0, 1.0, 4.0, 8192);
    private static readonly RopeScaling Llama32Rope = new("llama3", 32.0, 1.0, 4.0, 8192);
    private static readonly RopeScaling Gemma3Rope = new("linear", 8.0, OriginalMaxPositionEmbeddings: 131072);

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
        ["llama-3.2-1b"] = Llama(16, 2048, 8192, 32, 8, 128256, 131072, 500000.0) with { RopeScaling = Llama32Rope, TieWordEmbeddings = true },
        ["llama-3.2-3b"] = Llama(28, 3072, 8192, 24, 8, 128256, 131072, 500000.0) with { RopeScaling = Llama32Rope, TieWordEmbeddings = true },
        ["qwen3-0.6b"] = Qwen3(28, 1024, 3072, 16, 8, tied: true),
        ["qwen3-1.7b"] = Qwen3(28, 2048, 6144, 16, 8, tied: true),
        ["qwen3-4b"] = Qwen3(36, 2560, 9728, 32, 8, tied: true),
        ["qwen3-8b"] = Qwen3(36, 4096, 12288, 32, 8, tied: false),
        ["qwen3-14b"] = Qwen3(40, 5120, 17408, 40, 8, tied: false),
        ["qwen3-32b"] = Qwen3(64, 5120, 25600, 64, 8, tied: false),
        ["gemma-2-2b"] = Gemma2(26, 2304, 9216, 8, 4, 256, 256),
        ["gemma-2-9b"] = Gemma2(42, 3584, 14336, 16, 8, 256, 256),
        ["gemma-2-27b"] = Gemma2(46, 4608, 36864, 32, 16, 128, 144),
        ["gemma-3-1b"] = Gemma3(26, 1152, 6912, 4, 1, 256, 256, 262144, 512, 32768, null),
        ["gemma-3-4b"] = Gemma3(34, 2560, 10240, 8, 4, 256, 256, 262208, 1024, 131072, Gemma3Rope),
        ["gemma-3-12b"] = Gemma3(48, 3840, 15360, 16, 8, 256, 256, 262208, 1024, 131072, Gemma3Rope),
        ["gemma-3-27b"] = Gemma3(62, 5376, 21504, 32, 16, 128, 168, 262208, 1024, 131072, Gemma3Rope),
        ["mistral-nemo-12b"] = Llama(40, 5120, 14336, 32, 8, 131072, 1024000, 1_000_000.0) with { ModelType = "mistral", HeadDimOverride = 128 },
        ["phi-3-mini"] = Phi3(32, 3072, 8192, 32, 32, 32064, 4096, 10000.0, 2047),
        ["phi-3-medium"] = Phi3(40, 5120, 17920, 40, 10, 32064, 4096, 10000.0, 2047),
        ["phi-4"] = Phi3(40, 5120, 17920, 40, 10, 100352, 16384, 250000.0, null),
    };


    /// <summary>Every preset name, in a stable order.</summary>
    public static IReadOnlyList<string> Names { get; } =
    [
        "llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3-8b", "llama-3.1-8b", "llama-3.1-70b", "mistral-7b",
        "tinyllama-1.1b", "qwen2.5-0.5b", "qwen2.5-7b", "qwen2.5-14b", "qwen2.5-32b", "qwen2.5-72b",
        "llama-3.2-1b", "llama-3.2-3b", "qwen3-0.6b", "qwen3-1.7b", "qwen3-4b", "qwen3-8b", "qwen3-14b", "qwen3-32b",
        "gemma-2-2b", "gemma-2-9b", "gemma-2-27b", "gemma-3-1b", "gemma-3-4b", "gemma-3-12b", "gemma-3-27b", "mistral-nemo-12b",
        "phi-3-mini", "phi-3-medium", "phi-4",
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

    // Qwen3: head_dim 128 whatever hidden / heads is, q/k norms, no biases, rope_theta 1e6, 40,960 positions.
    private static ModelSpec Qwen3(int layers, int hidden, int inter, int heads, int kv, bool tied) => new()
    {
        ModelType = "qwen3", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = 151936, HeadDimOverride = 128, TieWordEmbeddings = tied, QkNorm = true,
        RopeTheta = 1_000_000.0, RmsNormEps = 1e-6, MaxPositionEmbeddings = 40960,
    };

    // Gemma 2: tied 256,000-token vocabulary, window 4096 on every other layer, soft-caps 50 (scores) and 30 (logits).
    private static ModelSpec Gemma2(int layers, int hidden, int inter, int heads, int kv, int headDim, double queryScalar) => new()
    {
        ModelType = "gemma2", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = 256000, HeadDimOverride = headDim, TieWordEmbeddings = true, RopeTheta = 10000.0,
        RmsNormEps = 1e-6, MaxPositionEmbeddings = 8192, SlidingWindow = 4096, GlobalLayerEvery = 2,
        QueryPreAttnScalar = queryScalar, AttnLogitSoftcap = 50.0, FinalLogitSoftcap = 30.0,
    };

    // Gemma 3 (the text model of the multimodal checkpoints for 4B and up): five local layers to one global, q/k norms,
    // local RoPE base 10,000, global base 1e6 with linear scaling 8 from 4B up.
    private static ModelSpec Gemma3(int layers, int hidden, int inter, int heads, int kv, int headDim, double queryScalar,
        int vocab, int window, int maxPos, RopeScaling? scaling) => new()
    {
        ModelType = "gemma3_text", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = vocab, HeadDimOverride = headDim, TieWordEmbeddings = true, RopeTheta = 1_000_000.0,
        RopeScaling = scaling, RopeLocalTheta = 10000.0, RmsNormEps = 1e-6, MaxPositionEmbeddings = maxPos,
        SlidingWindow = window, GlobalLayerEvery = 6, QkNorm = true, QueryPreAttnScalar = queryScalar,
    };

    // Qwen2 (and 2.5) projections q/k/v carry biases; rope_theta 1e6; the 0.5B (and 1.5B/3B) tie the head to the embedding.
    private static ModelSpec Qwen(int layers, int hidden, int inter, int heads, int kv, int vocab, bool tied, double eps) => new()
    {
        ModelType = "qwen2", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = vocab, TieWordEmbeddings = tied, AttentionBias = true, RopeTheta = 1_000_000.0,
        RmsNormEps = eps, MaxPositionEmbeddings = tied ? 32768 : 131072,
    };

    // Phi-3 (microsoft/Phi-3-mini-4k-instruct, Phi-3-medium-4k-instruct) and Phi-4 (microsoft/phi-4): fused qkv_proj and
    // gate_up_proj, untied head, rms_norm_eps 1e-5; the 4k Phi-3 models window every layer to 2047 keys, Phi-4 does not.
    private static ModelSpec Phi3(int layers, int hidden, int inter, int heads, int kv, int vocab, int maxPos, double theta, int? window) => new()
    {
        ModelType = "phi3", NumLayers = layers, HiddenSize = hidden, IntermediateSize = inter, NumHeads = heads,
        NumKvHeads = kv, VocabSize = vocab, MaxPositionEmbeddings = maxPos, RopeTheta = theta, RmsNormEps = 1e-5,
        SlidingWindow = window,
    };
}
