using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Formats;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A model as the trainer reads and writes it. A reference is either a Hugging Face style folder —
/// <c>config.json</c>, the weights as one <c>model.safetensors</c> or as shards listed by
/// <c>model.safetensors.index.json</c>, and a tokenizer (<c>tokenizer.json</c> / <c>tokenizer.model</c>, or the
/// project's <c>qpeft-tokenizer.json</c> that declares the byte-level tokenizer of the demo model) — or a
/// <c>synthetic:NAME[@SEED]</c> reference (<see cref="SyntheticModel"/>) whose weights are generated on load. A folder
/// whose weights are already quantized (bitsandbytes 4-bit or LQ-LoRA, <see cref="PrequantizedFolder"/>) hands its
/// quantized projections to the bases as stored.
/// </summary>
public static class ModelFolder
{
    /// <summary>The weights file of an unsharded checkpoint.</summary>
    public const string WeightsFileName = SafetensorsCheckpoint.SingleFileName;

    /// <summary>The index of a sharded checkpoint (it names the shard of every tensor).</summary>
    public const string IndexFileName = SafetensorsCheckpoint.IndexFileName;

    /// <summary>The file that declares the byte-level tokenizer (it has no vocabulary to store).</summary>
    public const string ByteTokenizerFileName = "qpeft-tokenizer.json";

    /// <summary>
    /// Checks that the reference resolves: a synthetic reference parses, a folder has a config and weights (naming the
    /// first missing file) and, when pre-quantized, a <c>quantization_config</c> the trainer reads (<see cref="PrequantizedFolder"/>).
    /// </summary>
    /// <exception cref="ModelException">The folder or one of its files is missing, the synthetic reference is wrong, or the
    /// folder's quantization is not one the trainer reads.</exception>
    public static void Check(string model)
    {
        if (SyntheticModel.IsSynthetic(model))
        {
            SyntheticModel.Parse(model);
            return;
        }
        if (!Directory.Exists(model)) throw new ModelException($"model folder '{model}' does not exist");
        if (!File.Exists(Path.Combine(model, ModelConfigReader.FileName)))
            throw new ModelException($"model folder '{model}': missing {ModelConfigReader.FileName}");
        WeightsPath(model);
        PrequantizedFolder.Read(model);
    }

    /// <summary>How run records name the model: a synthetic reference as given, a folder as its full path.</summary>
    public static string Describe(string model) => SyntheticModel.IsSynthetic(model) ? model : Path.GetFullPath(model);

    /// <summary>The architecture: the synthetic reference's, or the folder's <c>config.json</c>.</summary>
    public static ModelSpec ReadSpec(string model)
    {
        Check(model);
        return SyntheticModel.IsSynthetic(model)
            ? SyntheticModel.Parse(model).Spec
            : ModelConfigReader.Read(Path.Combine(model, ModelConfigReader.FileName));
    }

    /// <summary>
    /// The file the weights are opened from: the shard index when the folder has one (as Hugging Face
    /// prefers it), otherwise <c>model.safetensors</c>.
    /// </summary>
    /// <exception cref="ModelException">The folder has neither.</exception>
    public static string WeightsPath(string folder)
    {
        string index = Path.Combine(folder, IndexFileName);
        if (File.Exists(index)) return index;
        string single = Path.Combine(folder, WeightsFileName);
        if (File.Exists(single)) return single;
        throw new ModelException($"model folder '{folder}': missing {WeightsFileName} (or {IndexFileName} with its shards)");
    }

    /// <summary>
    /// The model's tokenizer: the byte-level one for a synthetic model or when <c>qpeft-tokenizer.json</c> declares
    /// it, otherwise the folder's Hugging Face files.
    /// </summary>
    /// <exception cref="ModelException">The declaration names another tokenizer type.</exception>
    public static ITextTokenizer ReadTokenizer(string folder)
    {
        if (SyntheticModel.IsSynthetic(folder)) return ByteLevelTokenizer.Instance;
        string declared = Path.Combine(folder, ByteTokenizerFileName);
        if (!File.Exists(declared)) return TokenizerLoader.FromModelFolder(folder);
        using var doc = JsonDocument.Parse(File.ReadAllText(declared));
        string? type = doc.RootElement.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type != "byte-level")
            throw new ModelException($"{declared}: \"type\": expected \"byte-level\", found {(type is null ? "nothing" : $"\"{type}\"")}");
        return ByteLevelTokenizer.Instance;
    }

    /// <summary>
    /// Builds a <see cref="CausalLm"/> with <paramref name="options"/> and streams the weights into it one tensor at a
    /// time (from the file or shards, or generated for a synthetic reference), so its linear factory can quantize
    /// each projection on the way in.
    /// </summary>
    public static CausalLm Load(string model, ModelSpec spec, DecoderOptions options)
    {
        var lm = new CausalLm(spec, options);
        try
        {
            return WithWeights(model, source =>
            {
                lm.LoadWeights(new HeapTrimmingTensorSource(source));
                return lm;
            });
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Runs <paramref name="use"/> on the model's weights as a tensor source (the checkpoint file or shards, closed
    /// afterwards, or the generator of a synthetic reference), for passes over the checkpoint besides loading. The
    /// source of a pre-quantized folder is an <see cref="IQuantizedTensorSource"/>.
    /// </summary>
    /// <returns>What <paramref name="use"/> returns.</returns>
    public static T WithWeights<T>(string model, Func<ITensorSource, T> use)
    {
        if (SyntheticModel.IsSynthetic(model)) return use(SyntheticModel.Parse(model).Source());
        ITensorSource source = PrequantizedFolder.Read(model)?.Open() ?? new SafetensorsModelSource(WeightsPath(model));
        try
        {
            return use(source);
        }
        finally
        {
            ((IDisposable)source).Dispose();
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> (plain linears, not adapters) as a model folder with a byte-level tokenizer
    /// declaration, each file atomically: config.json, the weights in the model's dtype, qpeft-tokenizer.json. The
    /// weights go to one <c>model.safetensors</c>, or to Hugging Face style shards of at most
    /// <paramref name="maxShardBytes"/> with their index when they do not fit in one.
    /// </summary>
    public static void SaveByteLevel(CausalLm model, string folder, long maxShardBytes = long.MaxValue)
    {
        Directory.CreateDirectory(folder);
        var entries = model.named_parameters()
            .Where(p => !(model.Spec.TieWordEmbeddings && p.name == "lm_head.weight"))
            .Select(p => SafetensorsModelSource.Entry(p.name, p.parameter))
            .ToList();
        var written = SafetensorsShardedWriter.Write(folder, entries, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
        // An index left by an earlier sharded save would win over the new single file on load.
        if (written.IndexPath is null) File.Delete(Path.Combine(folder, IndexFileName));
        ModelConfigWriter.WriteToFolder(model.Spec, folder, model.ComputeDType == ScalarType.BFloat16 ? "bfloat16" : "float32");
        AtomicFile.WriteAllBytes(Path.Combine(folder, ByteTokenizerFileName),
            System.Text.Encoding.UTF8.GetBytes("{\n  \"type\": \"byte-level\",\n  \"vocab_size\": 259,\n  \"bos_token_id\": 256,\n  \"eos_token_id\": 257,\n  \"pad_token_id\": 258\n}\n"));
    }
}
