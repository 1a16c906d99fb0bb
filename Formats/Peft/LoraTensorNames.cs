namespace QuantPeft.Formats.Peft;

/// <summary>The role of a tensor in a PEFT LoRA adapter file.</summary>
public enum LoraTensorKind
{
    /// <summary><c>lora_A.weight</c>, shape [r, in_features].</summary>
    A,
    /// <summary><c>lora_B.weight</c>, shape [out_features, r].</summary>
    B,
    /// <summary><c>lora_embedding_A</c>, shape [r, num_embeddings].</summary>
    EmbeddingA,
    /// <summary><c>lora_embedding_B</c>, shape [embedding_dim, r].</summary>
    EmbeddingB,
    /// <summary>DoRA's <c>lora_magnitude_vector</c>, shape [out_features].</summary>
    MagnitudeVector,
}

/// <summary>
/// Tensor names in <c>adapter_model.safetensors</c> as PEFT saves them: the adapter name
/// (<c>.default</c>) is stripped and every key starts with <c>base_model.model.</c>, e.g.
/// <c>base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight</c>.
/// </summary>
public static class LoraTensorNames
{
    /// <summary>The prefix PEFT's wrapper adds to every module path.</summary>
    public const string Prefix = "base_model.model.";

    private static readonly (string Suffix, LoraTensorKind Kind)[] Suffixes =
    [
        (".lora_A.weight", LoraTensorKind.A),
        (".lora_B.weight", LoraTensorKind.B),
        (".lora_embedding_A", LoraTensorKind.EmbeddingA),
        (".lora_embedding_B", LoraTensorKind.EmbeddingB),
        (".lora_magnitude_vector", LoraTensorKind.MagnitudeVector),
    ];

    /// <summary>The key of <paramref name="kind"/> for the module at <paramref name="modulePath"/> (e.g. <c>model.layers.0.mlp.up_proj</c>).</summary>
    public static string For(string modulePath, LoraTensorKind kind)
    {
        ArgumentException.ThrowIfNullOrEmpty(modulePath);
        return Prefix + modulePath + Suffixes.First(s => s.Kind == kind).Suffix;
    }

    /// <summary><c>base_model.model.&lt;module&gt;.lora_A.weight</c>, shape [r, in_features].</summary>
    public static string LoraA(string modulePath) => For(modulePath, LoraTensorKind.A);

    /// <summary><c>base_model.model.&lt;module&gt;.lora_B.weight</c>, shape [out_features, r].</summary>
    public static string LoraB(string modulePath) => For(modulePath, LoraTensorKind.B);

    /// <summary><c>base_model.model.&lt;module&gt;.lora_magnitude_vector</c> (DoRA), shape [out_features].</summary>
    public static string MagnitudeVector(string modulePath) => For(modulePath, LoraTensorKind.MagnitudeVector);

    /// <summary>Splits a key into module path and kind; false for keys that are not LoRA tensors (biases, modules_to_save).</summary>
    public static bool TryParse(string tensorName, out string modulePath, out LoraTensorKind kind)
    {
        ArgumentNullException.ThrowIfNull(tensorName);
        if (tensorName.StartsWith(Prefix, StringComparison.Ordinal))
        {
            foreach (var (suffix, k) in Suffixes)
            {
                if (tensorName.EndsWith(suffix, StringComparison.Ordinal) && tensorName.Length > Prefix.Length + suffix.Length)
                {
                    modulePath = tensorName[Prefix.Length..^suffix.Length];
                    kind = k;
                    return true;
                }
            }
        }
        modulePath = "";
        kind = default;
        return false;
    }
}
