using QuantPeft.Formats.Gguf;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Trainers.Model;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>
/// How a Hugging Face decoder becomes a llama.cpp model: the architecture name and its hyper-parameter keys, the GGUF
/// name of each checkpoint tensor, and the row order llama.cpp's rotary kernel expects.
/// </summary>
/// <remarks>
/// llama and mistral checkpoints both become llama.cpp's <c>llama</c> architecture, whose rotary embedding rotates
/// adjacent pairs (2i, 2i+1) of a head, while Hugging Face's rotates (i, i + D/2). The q and k rows (weights and
/// biases) are therefore reordered within each head: row i + D/2·j of the Hugging Face head goes to row 2i + j. Qwen2,
/// Qwen3 and Gemma (llama.cpp's <c>qwen2</c>, <c>qwen3</c>, <c>gemma2</c>, <c>gemma3</c>) use the half-split rotation
/// themselves and keep the rows as they are. Gemma's embedding scale √hidden is applied by llama.cpp, not stored.
/// </remarks>
public static class GgufModelLayout
{
    // model_type → llama.cpp architecture. One row per family; what a family's config may hold beyond the row is checked
    // in Refusal below.
    private static readonly Dictionary<string, string> Architectures = new(StringComparer.Ordinal)
    {
        ["llama"] = "llama",
        ["mistral"] = "llama",
        ["qwen2"] = "qwen2",
        ["qwen3"] = "qwen3",
        ["gemma2"] = "gemma2",
        ["gemma3_text"] = "gemma3",
        ["phi3"] = "phi3",
    };

    /// <summary>llama.cpp's architecture name for <paramref name="spec"/>.</summary>
    /// <exception cref="ExportException">
    /// A family llama.cpp's GGUF export does not cover here, or a configuration llama.cpp would read differently from the
    /// checkpoint (it fixes some hyper-parameters per architecture instead of reading them).
    /// </exception>
    public static string Architecture(ModelSpec spec)
    {
        if (!Architectures.TryGetValue(spec.ModelType, out string? arch))
            throw new ExportException($"config.json: model_type '{spec.ModelType}' has no GGUF export; supported: {string.Join(", ", Architectures.Keys)}");
        if (Refusal(spec, arch) is string why) throw new ExportException($"config.json: model_type '{spec.ModelType}': {why}; no GGUF export");
        return arch;
    }

    // llama.cpp takes the Gemma attention scale from the layer count (the 27B counts use hidden / heads, every other
    // head_dim), the window pattern and the local RoPE base from the architecture: a config that differs would be run
    // with other attention than it was trained with.
    private static string? Refusal(ModelSpec spec, string arch)
    {
        if (arch is "gemma2" or "gemma3")
        {
            bool is27B = spec.NumLayers == (arch == "gemma2" ? 46 : 62);
            int scaleDim = is27B ? spec.HiddenSize / spec.NumHeads : spec.HeadDim;
            if (spec.QueryPreAttnScalar is double q && q != scaleDim)
                return $"query_pre_attn_scalar {q} differs from the {scaleDim} llama.cpp scales attention by at {spec.NumLayers} layers";
            if (!spec.TieWordEmbeddings) return "an untied lm_head (llama.cpp's Gemma reads the embedding as the output)";
            int every = arch == "gemma2" ? 2 : 6;
            if (spec.SlidingWindow is not null && Enumerable.Range(0, spec.NumLayers).Any(l => spec.WindowOf(l) is null != ((l + 1) % every == 0)))
                return $"layer_types [{string.Join(", ", Enumerable.Range(0, spec.NumLayers).Select(l => spec.WindowOf(l) is null ? "full" : "sliding"))}] " +
                    $"(llama.cpp's {arch} makes every {every}th layer full and the others sliding)";
        }
        if (arch == "gemma2" && spec.RopeScaling is not null) return "rope_scaling (llama.cpp's gemma2 has none)";
        if (arch is "gemma2" or "gemma3" && spec.SlidingWindow is null) return $"no sliding_window (llama.cpp's {arch} has local layers)";
        if (arch == "gemma3")
        {
            if (spec.RopeLocalTheta is double local && local != 10000) return $"rope_local_base_freq {local} (llama.cpp's gemma3 uses 10000)";
            if (spec.AttnLogitSoftcap is not null || spec.FinalLogitSoftcap is not null) return "logit soft-capping (llama.cpp's gemma3 has none)";
        }
        if (arch is "llama" or "qwen2" or "qwen3" && (spec.AttnLogitSoftcap is not null || spec.FinalLogitSoftcap is not null))
            return "logit soft-capping";
        return null;
    }

    /// <summary>Whether q/k rows are reordered for llama.cpp's adjacent-pair rotation.</summary>
    public static bool PermutesQk(ModelSpec spec) => Architecture(spec) == "llama";

    // Architectures whose attention reads <arch>.attention.sliding_window. llama.cpp's llama attends to the whole
    // context whatever the key says.
    private static bool WindowIsAttention(string arch) => arch is "gemma2" or "gemma3";

    /// <summary>
    /// The training context the file declares: <c>max_position_embeddings</c>, or for a windowed model whose llama.cpp
    /// architecture has no window (Mistral v0.1's 4096 in llama's) the window, within which full and windowed attention
    /// are the same computation. llama.cpp warns when a run asks for more.
    /// </summary>
    public static int ContextLength(ModelSpec spec) =>
        spec.SlidingWindow is int w && !WindowIsAttention(Architecture(spec)) ? Math.Min(w, spec.MaxPositionEmbeddings) : spec.MaxPositionEmbeddings;

    /// <summary>Writes the architecture's hyper-parameter keys.</summary>
    public static void AddHyperParameters(GgufMetadata meta, ModelSpec spec)
    {
        string a = Architecture(spec);
        meta.SetUInt32($"{a}.context_length", (uint)ContextLength(spec));
        meta.SetUInt32($"{a}.embedding_length", (uint)spec.HiddenSize);
        meta.SetUInt32($"{a}.block_count", (uint)spec.NumLayers);
        meta.SetUInt32($"{a}.feed_forward_length", (uint)spec.IntermediateSize);
        meta.SetUInt32($"{a}.attention.head_count", (uint)spec.NumHeads);
        meta.SetUInt32($"{a}.attention.head_count_kv", (uint)spec.NumKvHeads);
        meta.SetFloat32($"{a}.rope.freq_base", (float)spec.RopeTheta);
        meta.SetFloat32($"{a}.attention.layer_norm_rms_epsilon", (float)spec.RmsNormEps);
        meta.SetUInt32($"{a}.vocab_size", (uint)spec.VocabSize);
        meta.SetUInt32($"{a}.rope.dimension_count", (uint)spec.RotaryDim);   // head_dim, or Phi's rotated part of it
        if (spec.HeadDim * spec.NumHeads != spec.HiddenSize || spec.GemmaStyle)
        {
            meta.SetUInt32($"{a}.attention.key_length", (uint)spec.HeadDim);
            meta.SetUInt32($"{a}.attention.value_length", (uint)spec.HeadDim);
        }
        if (spec.AttnLogitSoftcap is double attnCap) meta.SetFloat32($"{a}.attn_logit_softcapping", (float)attnCap);
        if (spec.FinalLogitSoftcap is double finalCap) meta.SetFloat32($"{a}.final_logit_softcapping", (float)finalCap);
        if (spec.SlidingWindow is int window && WindowIsAttention(a)) meta.SetUInt32($"{a}.attention.sliding_window", (uint)window);
        switch (spec.RopeScaling?.Type)
        {
            case "linear":
                meta.Set($"{a}.rope.scaling.type", "linear");
                meta.SetFloat32($"{a}.rope.scaling.factor", (float)spec.RopeScaling.Factor);
                break;
            case "llama3":
                break;   // carried by the rope_freqs tensor (RopeFrequencyFactors)
            case "longrope":
                // The factor lists are tensors (LongRopeFactors); llama.cpp multiplies cos/sin by attn_factor itself.
                meta.SetUInt32($"{a}.rope.scaling.original_context_length", (uint)spec.RopeScaling.OriginalMaxPositionEmbeddings);
                meta.SetFloat32($"{a}.rope.scaling.attn_factor", (float)spec.RopeScaling.CosSinScale);
                break;
            case null or "default" or "dynamic":
                break;   // dynamic equals the default within max_position_embeddings, the only lengths QuantPeft runs
            default:
                throw new ExportException($"config.json: rope_scaling type '{spec.RopeScaling.Type}' has no GGUF form here");
        }
    }

    /// <summary>
    /// Phi-3's window on every layer (<c>phi3.attention.sliding_window</c>, 0 for none). llama.cpp's phi3 (the build LLamaSharp
    /// 0.30 ships) attends to every earlier token whatever the key says, so a window shorter than the context would make
    /// llama.cpp's outputs differ from the model's past that many tokens: such a model is refused.
    /// </summary>
    /// <exception cref="ExportException">The window is shorter than <c>max_position_embeddings</c>.</exception>
    public static void AddSlidingWindow(GgufMetadata meta, ModelSpec spec)
    {
        if (Architecture(spec) != "phi3") return;
        if (spec.SlidingWindow is { } window && window < spec.MaxPositionEmbeddings)
            throw new ExportException(
                $"config.json: sliding_window {window} is shorter than max_position_embeddings {spec.MaxPositionEmbeddings}; llama.cpp's phi3 does not apply the window, so its outputs past {window} tokens would differ: no GGUF export");
        meta.SetUInt32("phi3.attention.sliding_window", (uint)(spec.SlidingWindow ?? 0));
    }

    /// <summary>
    /// longrope's short and long factor lists as llama.cpp's <c>rope_factors_short.weight</c> and <c>rope_factors_long.weight</c>
    /// (it picks the long ones when its context exceeds the original one); none for other scalings.
    /// </summary>
    public static IEnumerable<(string Name, float[] Values)> LongRopeFactors(ModelSpec spec)
    {
        if (spec.RopeScaling is not { Type: "longrope" } rope) yield break;
        yield return ("rope_factors_long.weight", rope.LongFactor!.Select(f => (float)f).ToArray());
        yield return ("rope_factors_short.weight", rope.ShortFactor!.Select(f => (float)f).ToArray());
    }

    /// <summary>
    /// For llama3 rope scaling: the D/2 factors llama.cpp divides the base frequencies by (<c>rope_freqs.weight</c>),
    /// i.e. unscaled / scaled inverse frequency; null for every other scaling.
    /// </summary>
    public static float[]? RopeFrequencyFactors(ModelSpec spec)
    {
        if (spec.RopeScaling?.Type != "llama3") return null;
        float[] scaled = RotaryEmbedding.InverseFrequencies(spec);
        float[] plain = RotaryEmbedding.InverseFrequencies(spec with { RopeScaling = null });
        return plain.Select((p, i) => p / scaled[i]).ToArray();
    }

    // Gemma's four norms per layer: the one after attention keeps its own tensor, the MLP's pre-norm is llama.cpp's ffn_norm.
    private static readonly Dictionary<string, string> GemmaNorms = new(StringComparer.Ordinal)
    {
        ["post_attention_layernorm.weight"] = "post_attention_norm.weight",
        ["pre_feedforward_layernorm.weight"] = "ffn_norm.weight",
        ["post_feedforward_layernorm.weight"] = "post_ffw_norm.weight",
    };

    /// <summary>The GGUF name of a checkpoint tensor of <paramref name="spec"/>'s family, or null for one llama.cpp does not load.</summary>
    public static string? TensorName(ModelSpec spec, string hfName)
    {
        const string layers = "model.layers.";
        if (spec.GemmaStyle && hfName.StartsWith(layers, StringComparison.Ordinal))
        {
            int dot = hfName.IndexOf('.', layers.Length);
            if (GemmaNorms.TryGetValue(hfName[(dot + 1)..], out string? norm)) return $"blk.{hfName[layers.Length..dot]}.{norm}";
        }
        return TensorName(hfName);
    }

    /// <summary>
    /// What llama.cpp's RMSNorm weight is relative to the checkpoint's: Gemma's norms scale by (1 + w), llama.cpp's by w,
    /// so Gemma's norm weights (the per-head q/k norms included) are written plus 1; 0 for every other tensor.
    /// </summary>
    public static float NormOffset(ModelSpec spec, string hfName) =>
        spec.GemmaStyle && hfName.EndsWith("norm.weight", StringComparison.Ordinal) ? 1f : 0f;

    /// <summary>The GGUF name of a checkpoint tensor, or null for a tensor llama.cpp does not load (a rotary buffer).</summary>
    public static string? TensorName(string hfName)
    {
        if (hfName == "model.embed_tokens.weight") return "token_embd.weight";
        if (hfName == "model.norm.weight") return "output_norm.weight";
        if (hfName == "lm_head.weight") return "output.weight";
        const string layers = "model.layers.";
        if (!hfName.StartsWith(layers, StringComparison.Ordinal)) return null;
        int dot = hfName.IndexOf('.', layers.Length);
        string index = hfName[layers.Length..dot], local = hfName[(dot + 1)..];
        string? mapped = local switch
        {
            "input_layernorm.weight" => "attn_norm.weight",
            "post_attention_layernorm.weight" => "ffn_norm.weight",
            "self_attn.q_proj.weight" => "attn_q.weight",
            "self_attn.q_proj.bias" => "attn_q.bias",
            "self_attn.k_proj.weight" => "attn_k.weight",
            "self_attn.k_proj.bias" => "attn_k.bias",
            "self_attn.v_proj.weight" => "attn_v.weight",
            "self_attn.v_proj.bias" => "attn_v.bias",
            "self_attn.o_proj.weight" => "attn_output.weight",
            "self_attn.o_proj.bias" => "attn_output.bias",
            "mlp.gate_proj.weight" => "ffn_gate.weight",
            "mlp.up_proj.weight" => "ffn_up.weight",
            "mlp.down_proj.weight" => "ffn_down.weight",
            "self_attn.qkv_proj.weight" => "attn_qkv.weight",   // phi3: fused q, k, v rows, as llama.cpp's phi3 reads them
            "mlp.gate_up_proj.weight" => "ffn_up.weight",       // phi3: gate rows then up rows; llama.cpp splits them for SwiGLU
            "self_attn.q_norm.weight" => "attn_q_norm.weight",
            "self_attn.k_norm.weight" => "attn_k_norm.weight",
            _ => null,
        };
        return mapped is null ? null : $"blk.{index}.{mapped}";
    }

    /// <summary>The number of heads whose rows <paramref name="hfName"/> reorders (q: heads, k: kv heads), or 0 for none.</summary>
    public static int PermutedHeads(ModelSpec spec, string hfName)
    {
        if (!PermutesQk(spec)) return 0;
        if (hfName.EndsWith("self_attn.q_proj.weight", StringComparison.Ordinal) || hfName.EndsWith("self_attn.q_proj.bias", StringComparison.Ordinal))
            return spec.NumHeads;
        if (hfName.EndsWith("self_attn.k_proj.weight", StringComparison.Ordinal) || hfName.EndsWith("self_attn.k_proj.bias", StringComparison.Ordinal))
            return spec.NumKvHeads;
        return 0;
    }

    /// <summary>
    /// The source row that lands at each output row when <paramref name="rows"/> rows of <paramref name="heads"/> heads are
    /// reordered from half-split to adjacent pairs: output row h·D + 2i + j reads source row h·D + j·D/2 + i.
    /// </summary>
    public static long[] PermutedRowOrder(long rows, int heads)
    {
        long d = rows / heads, half = d / 2;
        var order = new long[rows];
        for (long h = 0; h < heads; h++)
            for (long i = 0; i < half; i++)
                for (long j = 0; j < 2; j++)
                    order[h * d + 2 * i + j] = h * d + j * half + i;
        return order;
    }
}
