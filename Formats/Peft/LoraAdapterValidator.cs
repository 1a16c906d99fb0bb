using K = QuantPeft.Formats.Peft.PeftErrorKind;

namespace QuantPeft.Formats.Peft;

/// <summary>One adapted module of a LoRA adapter, as its tensors describe it.</summary>
/// <param name="ModulePath">Module path without PEFT's prefix, e.g. <c>model.layers.0.self_attn.q_proj</c>.</param>
/// <param name="Rank">r: rows of A, columns of B.</param>
/// <param name="InFeatures">Columns of A (num_embeddings for an embedding).</param>
/// <param name="OutFeatures">Rows of B (embedding_dim for an embedding).</param>
/// <param name="IsEmbedding">Whether the module is an embedding (<c>lora_embedding_A/B</c>).</param>
/// <param name="HasMagnitude">Whether a DoRA magnitude vector is present.</param>
public sealed record LoraModule(string ModulePath, int Rank, long InFeatures, long OutFeatures, bool IsEmbedding, bool HasMagnitude);

/// <summary>
/// Checks that an adapter's tensors form consistent LoRA pairs and agree with its config: every A has
/// its B, A is [r, in] and B is [out, r] with the same r, r is what <c>r</c>/<c>rank_pattern</c> say,
/// and DoRA magnitudes are [out].
/// </summary>
internal static class LoraAdapterValidator
{
    public static IReadOnlyList<LoraModule> Validate(string path, PeftAdapterConfig config, IEnumerable<(string Name, long[] Shape)> tensors, List<string> warnings)
    {
        var byModule = new SortedDictionary<string, Dictionary<LoraTensorKind, (string Name, long[] Shape)>>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (!LoraTensorNames.TryParse(t.Name, out string module, out var kind))
                continue;
            if (!byModule.TryGetValue(module, out var parts))
                byModule[module] = parts = [];
            parts[kind] = t;
        }
        var modules = new List<LoraModule>();
        foreach (var (module, parts) in byModule)
        {
            bool embedding = parts.ContainsKey(LoraTensorKind.EmbeddingA) || parts.ContainsKey(LoraTensorKind.EmbeddingB);
            var (kA, kB) = embedding ? (LoraTensorKind.EmbeddingA, LoraTensorKind.EmbeddingB) : (LoraTensorKind.A, LoraTensorKind.B);
            if (embedding && (parts.ContainsKey(LoraTensorKind.A) || parts.ContainsKey(LoraTensorKind.B)))
                throw new PeftFormatException(K.ShapeMismatch, path, LoraTensorNames.For(module, kA), "module has both embedding and linear LoRA tensors");
            bool hasA = parts.TryGetValue(kA, out var a), hasB = parts.TryGetValue(kB, out var b);
            if (!hasA || !hasB)
            {
                if (!hasA && !hasB)
                    throw new PeftFormatException(K.UnpairedLoraTensor, path, parts.Values.First().Name, "magnitude vector without lora_A/lora_B");
                var (present, missing) = hasA ? (a.Name, LoraTensorNames.For(module, kB)) : (b.Name, LoraTensorNames.For(module, kA));
                throw new PeftFormatException(K.UnpairedLoraTensor, path, present, $"has no partner '{missing}'");
            }
            if (a.Shape.Length != 2)
                throw new PeftFormatException(K.ShapeMismatch, path, a.Name, $"expected [r, in_features], found [{string.Join(", ", a.Shape)}]");
            if (b.Shape.Length != 2)
                throw new PeftFormatException(K.ShapeMismatch, path, b.Name, $"expected [out_features, r], found [{string.Join(", ", b.Shape)}]");
            if (a.Shape[0] != b.Shape[1])
                throw new PeftFormatException(K.ShapeMismatch, path, b.Name, $"has r = {b.Shape[1]} (shape [{string.Join(", ", b.Shape)}]) but '{a.Name}' has r = {a.Shape[0]} (shape [{string.Join(", ", a.Shape)}])");
            int expected = config.RankFor(module);
            if (a.Shape[0] != expected)
                throw new PeftFormatException(K.RankMismatch, path, a.Name, $"has r = {a.Shape[0]} but the config gives r = {expected} for module '{module}'");
            bool hasMagnitude = parts.TryGetValue(LoraTensorKind.MagnitudeVector, out var m);
            if (hasMagnitude && (m.Shape.Length != 1 || m.Shape[0] != b.Shape[0]))
                throw new PeftFormatException(K.ShapeMismatch, path, m.Name, $"expected [{b.Shape[0]}] (out_features of lora_B), found [{string.Join(", ", m.Shape)}]");
            if (config.UseDora && !hasMagnitude && !embedding)
                throw new PeftFormatException(K.MissingMagnitude, path, LoraTensorNames.MagnitudeVector(module), "use_dora is true but the module has no magnitude vector");
            if (hasMagnitude && !config.UseDora)
                warnings.Add($"'{path}': '{m.Name}' is a DoRA magnitude vector but use_dora is false; PEFT would ignore it");
            modules.Add(new LoraModule(module, (int)a.Shape[0], a.Shape[1], b.Shape[0], embedding, hasMagnitude));
        }
        return modules;
    }
}
