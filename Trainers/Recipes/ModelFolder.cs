using System.Text.Json;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Trainers.Data;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Tokenizers;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Recipes;

/// <summary>
/// A Hugging Face style model folder as the trainer reads and writes it: <c>config.json</c>, one
/// <c>model.safetensors</c>, and a tokenizer (<c>tokenizer.json</c> / <c>tokenizer.model</c>, or the
/// project's <c>qpeft-tokenizer.json</c> that declares the byte-level tokenizer of the demo model).
/// </summary>
public static class ModelFolder
{
    /// <summary>The weights file the trainer reads (sharded checkpoints are not loaded by the trainer yet).</summary>
    public const string WeightsFileName = "model.safetensors";

    /// <summary>The file that declares the byte-level tokenizer (it has no vocabulary to store).</summary>
    public const string ByteTokenizerFileName = "qpeft-tokenizer.json";

    /// <summary>Checks that the folder has what the trainer needs, naming the first missing file.</summary>
    /// <exception cref="ModelException">The folder or one of its files is missing.</exception>
    public static void Check(string folder)
    {
        if (!Directory.Exists(folder)) throw new ModelException($"model folder '{folder}' does not exist");
        foreach (var file in new[] { ModelConfigReader.FileName, WeightsFileName })
            if (!File.Exists(Path.Combine(folder, file)))
                throw new ModelException($"model folder '{folder}': missing {file}");
    }

    /// <summary>Reads the architecture from <c>config.json</c>.</summary>
    public static ModelSpec ReadSpec(string folder)
    {
        Check(folder);
        return ModelConfigReader.Read(Path.Combine(folder, ModelConfigReader.FileName));
    }

    /// <summary>The folder's tokenizer: the byte-level one when <c>qpeft-tokenizer.json</c> declares it, otherwise the Hugging Face files.</summary>
    /// <exception cref="ModelException">The declaration names another tokenizer type.</exception>
    public static ITextTokenizer ReadTokenizer(string folder)
    {
        string declared = Path.Combine(folder, ByteTokenizerFileName);
        if (!File.Exists(declared)) return TokenizerLoader.FromModelFolder(folder);
        using var doc = JsonDocument.Parse(File.ReadAllText(declared));
        string? type = doc.RootElement.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        if (type != "byte-level")
            throw new ModelException($"{declared}: \"type\": expected \"byte-level\", found {(type is null ? "nothing" : $"\"{type}\"")}");
        return ByteLevelTokenizer.Instance;
    }

    /// <summary>Builds a <see cref="CausalLm"/> with <paramref name="options"/> and streams the folder's weights into it.</summary>
    public static CausalLm Load(string folder, ModelSpec spec, DecoderOptions options)
    {
        var model = new CausalLm(spec, options);
        try
        {
            using var source = new SafetensorsModelSource(Path.Combine(folder, WeightsFileName));
            model.LoadWeights(source);
            return model;
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Writes <paramref name="model"/> (plain linears, not adapters) as a model folder with a byte-level tokenizer
    /// declaration, each file atomically: config.json, model.safetensors (in the model's dtype), qpeft-tokenizer.json.
    /// </summary>
    public static void SaveByteLevel(CausalLm model, string folder)
    {
        Directory.CreateDirectory(folder);
        var entries = model.named_parameters()
            .Where(p => !(model.Spec.TieWordEmbeddings && p.name == "lm_head.weight"))
            .Select(p => SafetensorsModelSource.Entry(p.name, p.parameter))
            .ToList();
        SafetensorsWriter.WriteFile(Path.Combine(folder, WeightsFileName), entries, new Dictionary<string, string> { ["format"] = "pt" });
        ModelConfigWriter.WriteToFolder(model.Spec, folder, model.ComputeDType == ScalarType.BFloat16 ? "bfloat16" : "float32");
        AtomicFile.WriteAllBytes(Path.Combine(folder, ByteTokenizerFileName),
            System.Text.Encoding.UTF8.GetBytes("{\n  \"type\": \"byte-level\",\n  \"vocab_size\": 259,\n  \"bos_token_id\": 256,\n  \"eos_token_id\": 257,\n  \"pad_token_id\": 258\n}\n"));
    }
}
