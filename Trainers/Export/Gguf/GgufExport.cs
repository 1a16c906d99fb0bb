using System.Runtime.InteropServices;
using QuantPeft.Formats.Gguf;
using QuantPeft.Formats.HuggingFace;
using QuantPeft.Memory.Planning;
using QuantPeft.Trainers.Adapters;
using QuantPeft.Trainers.Model;
using QuantPeft.Trainers.Recipes;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Trainers.Export.Gguf;

/// <summary>What a GGUF export wrote.</summary>
/// <param name="Path">The GGUF file.</param>
/// <param name="Bytes">Its size.</param>
/// <param name="Tensors">Tensors in the file.</param>
/// <param name="MergedModules">Adapter modules merged into the base before writing (0 for a plain model).</param>
public sealed record GgufExportResult(string Path, long Bytes, int Tensors, int MergedModules);

/// <summary>
/// <c>qpeft export --format gguf</c>: a model folder (or a synthetic reference), optionally with an adapter merged in,
/// written as one GGUF file that llama.cpp loads: <c>general.*</c> keys, the architecture's hyper-parameters
/// (<see cref="GgufModelLayout"/>), the tokenizer (<see cref="GgufVocabulary"/>) and the tensors under llama.cpp's names,
/// q/k rows reordered for the llama architecture.
/// </summary>
/// <remarks>
/// Matrices are written as <c>--quant</c> says (f16, bf16, q8_0 and q4_0 encoded here by <see cref="GgmlBlockEncoder"/>);
/// norms and biases stay float32, as llama.cpp's converter keeps them. The k-quant mixes (q4_k_m, q5_k_m, q6_k) are
/// produced by llama.cpp's own quantizer (<see cref="LlamaCppQuantizer"/>) from an intermediate file whose matrices keep
/// the source's exact values (bf16 when the source is bf16, float32 otherwise). Tensors are converted and written one at
/// a time, a chunk of rows at a time, so beyond the (merged) model the export holds one tensor. The file is written
/// under a hidden temporary name beside the target and renamed at the end: a failed export leaves nothing.
/// </remarks>
public static class GgufExport
{
    // Rows are converted in chunks of about this many elements, so a large embedding never exists as float32 whole.
    private const long ChunkElements = 1 << 22;

    /// <summary>Writes <paramref name="model"/> (with <paramref name="adapterFolder"/> merged in when given) to <paramref name="output"/>.</summary>
    /// <param name="model">A model folder or a <c>synthetic:NAME</c> reference.</param>
    /// <param name="adapterFolder">A PEFT adapter folder to merge first, or null.</param>
    /// <param name="quant">The element type of the matrices.</param>
    /// <param name="output">The GGUF file to create; it must not exist.</param>
    /// <param name="onTensor">Called after each tensor with (tensors written, tensors in all, name).</param>
    /// <exception cref="ExportException">Bad input: the output exists, the adapter does not fit, a family or tokenizer without a GGUF form.</exception>
    /// <param name="onto">With an adapter: null merges into the original weights; a 4-bit format merges into that base, dequantized.</param>
    public static GgufExportResult Write(string model, string? adapterFolder, GgufQuantType quant, string output, Action<int, int, string>? onTensor = null, MergeBase? onto = null)
    {
        if (File.Exists(output) || Directory.Exists(output)) throw new ExportException($"-o: '{output}' already exists; give a new file name");
        ModelSpec spec;
        try
        {
            spec = ModelFolder.ReadSpec(model);
        }
        catch (ModelException e)
        {
            throw new ExportException($"--model: {e.Message}");
        }
        GgufModelLayout.Architecture(spec);   // refuses an unsupported family before anything is read
        GgufModelLayout.AddSlidingWindow(new GgufMetadata(), spec);   // and a Phi-3 window llama.cpp would not apply
        if (!SyntheticModel.IsSynthetic(model) && PrequantizedFolder.Read(model) is not null)
            throw new ExportException($"--model: '{model}' holds pre-quantized weights; export from the full-precision folder it was quantized from");

        string full = Path.GetFullPath(output);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        string? intermediate = GgufQuantTypes.IsKQuant(quant) ? temp + ".source.gguf" : null;
        try
        {
            int tensors, merged;
            if (adapterFolder is null)
            {
                merged = 0;
                tensors = ModelFolder.WithWeights(model, source => WriteFile(intermediate ?? temp, model, spec, quant, source.Get, onTensor));
            }
            else
            {
                using var adapter = ExportableAdapters.Open(adapterFolder);
                adapter.CheckFits(spec, Path.Combine(model, ModelConfigReader.FileName));
                using var lm = MergedModel(model, spec, adapter, onto, out merged);
                var byName = lm.named_parameters().ToDictionary(p => p.name.Replace(".base_layer.", ".", StringComparison.Ordinal), p => (Tensor)p.parameter, StringComparer.Ordinal);
                tensors = WriteFile(intermediate ?? temp, model, spec, quant, name => byName[name].alias(), onTensor);
            }
            if (intermediate is not null) LlamaCppQuantizer.Quantize(intermediate, temp, quant);
            File.Move(temp, full);
            return new GgufExportResult(full, new FileInfo(full).Length, tensors, merged);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
            if (intermediate is not null && File.Exists(intermediate)) File.Delete(intermediate);
        }
    }

    /// <summary>The base in bf16 with the adapter folded in, as <c>qpeft export --merge</c> builds it.</summary>
    private static CausalLm MergedModel(string model, ModelSpec spec, IExportableAdapter adapter, MergeBase? onto, out int merged)
    {
        var decoder = new DecoderOptions
        {
            ComputeDType = ScalarType.BFloat16,
            LinearFactory = BaseWeights.Factory(WeightFormat.Bf16, doubleQuant: false, ScalarType.BFloat16),
        };
        var lm = new CausalLm(spec, decoder);
        try
        {
            ModelFolder.WithWeights(model, source =>
            {
                lm.LoadWeights(new HeapTrimmingTensorSource(onto is null ? source : new DequantizedBaseSource(source, onto.QuantType, onto.DoubleQuant)));
                return 0;
            });
            merged = adapter.MergeInto(lm);
            return lm;
        }
        catch
        {
            lm.Dispose();
            throw;
        }
    }

    private static int WriteFile(string path, string model, ModelSpec spec, GgufQuantType quant, Func<string, Tensor> read, Action<int, int, string>? onTensor)
    {
        var specs = spec.Tensors().ToList();
        GgmlType matrixType = MatrixTypeOf(quant, specs, read);
        var meta = new GgufMetadata();
        string arch = GgufModelLayout.Architecture(spec);
        meta.Set("general.architecture", arch);
        meta.Set("general.type", "model");
        meta.Set("general.name", SyntheticModel.IsSynthetic(model) ? model : Path.GetFileName(Path.GetFullPath(model).TrimEnd(Path.DirectorySeparatorChar)));
        meta.SetUInt32("general.quantization_version", 2);
        meta.SetUInt32("general.file_type", GgufQuantTypes.IsKQuant(quant) ? FileTypeOf(matrixType) : GgufQuantTypes.FileType(quant));
        GgufModelLayout.AddHyperParameters(meta, spec);
        GgufModelLayout.AddSlidingWindow(meta, spec);
        GgufVocabulary.Add(meta, model, spec);

        var tensors = new List<GgufTensor>();
        int done = 0, total = specs.Count;
        if (GgufModelLayout.RopeFrequencyFactors(spec) is float[] factors)
        {
            tensors.Add(new GgufTensor("rope_freqs.weight", [factors.Length], GgmlType.F32, s => s.Write(MemoryMarshal.AsBytes(factors.AsSpan()))));
            total++;
        }
        foreach (var (factorName, values) in GgufModelLayout.LongRopeFactors(spec))
        {
            tensors.Add(new GgufTensor(factorName, [values.Length], GgmlType.F32, s => s.Write(MemoryMarshal.AsBytes(values.AsSpan()))));
            total++;
        }
        foreach (var t in specs)
        {
            string name = GgufModelLayout.TensorName(spec, t.Name) ?? throw new ExportException($"tensor '{t.Name}' has no llama.cpp name");
            GgmlType type = t.Shape.Length == 1 ? GgmlType.F32
                : t.Shape[^1] % GgmlTypes.BlockElements(matrixType) == 0 ? matrixType : GgmlType.F16;
            int heads = GgufModelLayout.PermutedHeads(spec, t.Name);
            float offset = GgufModelLayout.NormOffset(spec, t.Name);
            tensors.Add(new GgufTensor(name, t.Shape.Reverse().ToArray(), type, stream =>
            {
                WriteTensor(stream, read(t.Name), type, heads, offset, t);
                onTensor?.Invoke(++done, total, name);
            }));
        }
        GgufWriter.Write(path, meta, tensors);
        return tensors.Count;
    }

    // The matrices' type: the --quant type, or for a k-quant the exact type of the source's weights (an intermediate).
    private static GgmlType MatrixTypeOf(GgufQuantType quant, List<TensorSpec> specs, Func<string, Tensor> read)
    {
        if (!GgufQuantTypes.IsKQuant(quant)) return GgufQuantTypes.MatrixType(quant);
        using var first = read(specs.First(s => s.Shape.Length == 2).Name);
        return first.dtype switch
        {
            ScalarType.BFloat16 => GgmlType.BF16,
            ScalarType.Float16 => GgmlType.F16,
            _ => GgmlType.F32,
        };
    }

    private static uint FileTypeOf(GgmlType type) => type switch
    {
        GgmlType.BF16 => 32,
        GgmlType.F16 => 1,
        _ => 0,
    };

    private static void WriteTensor(Stream stream, Tensor value, GgmlType type, int permutedHeads, float offset, TensorSpec spec)
    {
        using var scope = NewDisposeScope();
        using var owned = value;
        if (!value.shape.SequenceEqual(spec.Shape))
            throw new ExportException($"tensor '{spec.Name}': shape [{string.Join(", ", value.shape)}], expected [{string.Join(", ", spec.Shape)}] from config.json");
        var rows = value.dim() == 1 ? value.unsqueeze(1) : value;           // (R, C)
        if (permutedHeads > 0)
        {
            using var order = tensor(GgufModelLayout.PermutedRowOrder(rows.shape[0], permutedHeads), device: rows.device);
            rows = rows.index_select(0, order);
        }
        long r = rows.shape[0], c = rows.shape[1];
        long chunkRows = Math.Max(1, ChunkElements / c);
        if (value.dim() == 1) chunkRows = r;
        byte[] buffer = [];
        for (long start = 0; start < r; start += chunkRows)
        {
            using var inner = NewDisposeScope();
            long n = Math.Min(chunkRows, r - start);
            using var chunk = rows.narrow(0, start, n).to(ScalarType.Float32).cpu().contiguous();
            var values = MemoryMarshal.Cast<byte, float>(chunk.bytes);
            if (offset != 0) for (int i = 0; i < values.Length; i++) values[i] += offset;   // in float32, as the norm computes
            int length = (int)GgmlTypes.ByteLength(type, values.Length);
            if (buffer.Length < length) buffer = new byte[length];
            GgmlBlockEncoder.Encode(values, type, buffer.AsSpan(0, length));
            stream.Write(buffer, 0, length);
        }
    }
}
