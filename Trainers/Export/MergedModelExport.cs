using System.Text.Json.Nodes;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using QuantPeft.Memory.Planning;
using QuantPeft.Quant.Codecs;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export;

/// <summary>The 4-bit base an adapter was trained on, for <c>--merge-onto dequantized</c>.</summary>
/// <param name="QuantType">The 4-bit code book, NF4 or FP4.</param>
/// <param name="DoubleQuant">Whether the block scales were double-quantized.</param>
public sealed record MergeBase(FourBitType QuantType, bool DoubleQuant);

/// <summary>What an export wrote.</summary>
/// <param name="Folder">The output folder.</param>
/// <param name="WeightFiles">The safetensors files written (one, or the shards).</param>
/// <param name="IndexFile">The shard index, or null when one file holds everything.</param>
/// <param name="MergedModules">Adapter modules merged (0 for an adapter copy).</param>
public sealed record ExportResult(string Folder, IReadOnlyList<string> WeightFiles, string? IndexFile, int MergedModules);

/// <summary>
/// <c>qpeft export --merge</c>: the base model loaded densely in bf16, the adapter folded in (LoRA and DoRA attached and
/// merged through <see cref="IAdapterLayer.Merge"/>; VeRA and OSoRA updates computed from their files' tensors), written as a Hugging Face model folder that other tools load as a plain model:
/// <c>config.json</c> (torch_dtype bfloat16), <c>model.safetensors</c> or shards with
/// <c>model.safetensors.index.json</c>, and the base folder's tokenizer and other side files.
/// </summary>
/// <remarks>
/// Tensor names, order and shapes are exactly the base checkpoint's; every floating tensor is bf16. The folder is
/// built under a hidden temporary name beside the target and renamed at the end, so a failed export leaves nothing.
/// </remarks>
public static class MergedModelExport
{
    private static readonly Dictionary<string, string> PtMetadata = new() { ["format"] = "pt" };

    /// <summary>Merges the adapter in <paramref name="adapterFolder"/> into the model in <paramref name="modelFolder"/> and writes <paramref name="output"/>.</summary>
    /// <param name="adapterFolder">The PEFT adapter folder.</param>
    /// <param name="modelFolder">The base model folder.</param>
    /// <param name="output">The folder to write (absent or empty).</param>
    /// <param name="maxShardBytes">The largest weights file.</param>
    /// <param name="device">Where the bf16 model is held while the deltas are added (null: the CPU); the deltas are formed
    /// on the host and added in f32, so every device writes the same bytes.</param>
    /// <exception cref="ExportException">The adapter does not fit the model, or <paramref name="output"/> is a non-empty folder.</exception>
    /// <param name="onto">Null: merge into the original weights; a 4-bit format: into that base, dequantized (<see cref="DequantizedBaseSource"/>).</param>
    public static ExportResult Merge(string adapterFolder, string modelFolder, string output, long maxShardBytes, MergeBase? onto = null, Device? device = null)
    {
        var (spec, configPath) = ReadSpec(modelFolder);
        using var adapter = ExportableAdapters.Open(adapterFolder);
        adapter.CheckFits(spec, configPath);
        ExportFolder.CheckTarget(output);
        using var checkpoint = SafetensorsCheckpoint.Open(modelFolder);
        var decoder = new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            Device = device,
            LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, doubleQuant: false, ScalarType.BFloat16, device),
        };
        using var model = new CausalLm(spec, decoder);
        using (var source = new ShardedTensorSource(checkpoint))
            model.LoadWeights(onto is null ? source : new DequantizedBaseSource(source, onto.QuantType, onto.DoubleQuant));
        int merged = adapter.MergeInto(model);

        // The model's own parameters under their checkpoint names: an adapter keeps its base as `base_layer`.
        var byName = model.named_parameters().ToDictionary(p => p.name.Replace(".base_layer.", ".", StringComparison.Ordinal), p => (Tensor)p.parameter, StringComparer.Ordinal);
        var owned = new List<Tensor>();
        try
        {
            var entries = new List<SafetensorsTensorEntry>();
            foreach (var info in checkpoint.Tensors)
            {
                Tensor? value = byName.GetValueOrDefault(info.Name)
                    ?? (spec.TieWordEmbeddings && info.Name == "lm_head.weight" ? model.LmHeadWeight : null);
                if (value is null)
                {
                    // Not a model parameter (e.g. an old rotary inv_freq buffer): carried over, floats as bf16.
                    entries.Add(info.DType is SafetensorsDType.F32 or SafetensorsDType.F16 or SafetensorsDType.F64 or SafetensorsDType.BF16
                        ? Bf16Entry(info.Name, Own(owned, ReadTensor(checkpoint, info)))
                        : SafetensorsTensorEntry.FromBytes(info.Name, info.DType, info.Shape, checkpoint.ReadBytes(info.Name)));
                    continue;
                }
                entries.Add(Bf16Entry(info.Name, value.dtype == ScalarType.BFloat16 ? value : Own(owned, value.to(ScalarType.BFloat16))));
            }
            string written = ExportFolder.Build(output, temp =>
            {
                SafetensorsShardedWriter.Write(temp, entries, maxShardBytes, PtMetadata);
                var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
                config["torch_dtype"] = "bfloat16";
                File.WriteAllText(Path.Combine(temp, ModelConfigReader.FileName), config.ToJsonString(new() { WriteIndented = true }) + "\n");
                ExportFolder.CopySideFiles(modelFolder, temp);
            });
            return ExportFolder.Describe(written, merged);
        }
        finally
        {
            foreach (var t in owned) t.Dispose();
        }
    }

    /// <summary>The architecture from the model folder's <c>config.json</c>, and that file's path.</summary>
    /// <exception cref="ExportException">The folder or its config.json is missing.</exception>
    internal static (ModelSpec Spec, string ConfigPath) ReadSpec(string modelFolder)
    {
        if (!Directory.Exists(modelFolder)) throw new ExportException($"--model: folder '{modelFolder}' does not exist");
        string configPath = Path.Combine(modelFolder, ModelConfigReader.FileName);
        if (!File.Exists(configPath)) throw new ExportException($"--model: '{modelFolder}': missing {ModelConfigReader.FileName}");
        return (ModelConfigReader.Read(configPath), configPath);
    }

    private static Tensor Own(List<Tensor> owned, Tensor t)
    {
        owned.Add(t);
        return t;
    }

    private static Tensor ReadTensor(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo info)
    {
        using var source = new SafetensorsModelSource(checkpoint.FileOf(info.Name).Path);
        using var raw = source.Get(info.Name);
        return raw.to(ScalarType.BFloat16);
    }

    // The bytes are read when the writer gets to the tensor, so no second copy of the model is held.
    private static SafetensorsTensorEntry Bf16Entry(string name, Tensor value) =>
        SafetensorsTensorEntry.FromCallback(name, SafetensorsDType.BF16, value.shape, stream =>
        {
            using var cpu = value.detach().cpu().contiguous();
            stream.Write(cpu.bytes);
        });

    // A checkpoint of one file or of shards as the weight loader's source.
    private sealed class ShardedTensorSource : ITensorSource, IDisposable
    {
        private readonly SafetensorsCheckpoint _checkpoint;
        private readonly Dictionary<string, SafetensorsModelSource> _files = new(StringComparer.Ordinal);

        public ShardedTensorSource(SafetensorsCheckpoint checkpoint) => _checkpoint = checkpoint;

        public string Origin => _checkpoint.IndexPath ?? _checkpoint.Shards[0].Path;

        public IEnumerable<string> Names => _checkpoint.Tensors.Select(t => t.Name);

        public Tensor Get(string name)
        {
            string path = _checkpoint.FileOf(name).Path;
            if (!_files.TryGetValue(path, out var file)) _files[path] = file = new SafetensorsModelSource(path);
            return file.Get(name);
        }

        public void Dispose()
        {
            foreach (var f in _files.Values) f.Dispose();
        }
    }
}
