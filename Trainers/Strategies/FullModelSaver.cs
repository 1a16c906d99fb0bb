using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using TorchSharp;

namespace QuantPeft.Trainers.Strategies;

/// <summary>
/// Saves a fully trained model (full-parameter, GaLore, LISA) as a Hugging Face model folder that
/// <c>transformers</c> and <see cref="ModelFolder.Load"/> read: <c>config.json</c>, <c>model.safetensors</c> with
/// the checkpoint's keys, and the source folder's tokenizer files.
/// </summary>
public static class FullModelSaver
{
    /// <summary>Files copied unchanged from the source model folder when present.</summary>
    public static IReadOnlyList<string> CarriedFiles { get; } =
    [
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
        "generation_config.json", ModelFolder.ByteTokenizerFileName,
    ];

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="folder"/> through a temporary sibling folder and a
    /// rename, so an interrupted save leaves nothing half-written; an existing folder is replaced.
    /// </summary>
    public static void Save(CausalLm model, string sourceFolder, string folder)
    {
        string full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string temp = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(temp);
            // Tied heads are stored once, under the embedding's name, as Hugging Face does.
            var entries = model.named_parameters()
                .Where(p => !(model.Spec.TieWordEmbeddings && p.name == "lm_head.weight"))
                .Select(p => SafetensorsModelSource.Entry(p.name, p.parameter));
            SafetensorsWriter.WriteFile(Path.Combine(temp, ModelFolder.WeightsFileName), entries, new Dictionary<string, string> { ["format"] = "pt" });
            ModelConfigWriter.WriteToFolder(model.Spec, temp, model.ComputeDType == torch.ScalarType.BFloat16 ? "bfloat16" : "float32");
            foreach (var name in CarriedFiles)
            {
                string source = Path.Combine(sourceFolder, name);
                if (File.Exists(source)) File.Copy(source, Path.Combine(temp, name));
            }
            if (Directory.Exists(full))
            {
                string old = temp + ".old";
                Directory.Move(full, old);
                Directory.Move(temp, full);
                Directory.Delete(old, recursive: true);
            }
            else
            {
                Directory.Move(temp, full);
            }
        }
        finally
        {
            if (Directory.Exists(temp)) Directory.Delete(temp, recursive: true);
        }
    }
}
