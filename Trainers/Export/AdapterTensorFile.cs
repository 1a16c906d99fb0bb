using QuantPeft.Formats.Peft;
using QuantPeft.Formats.Safetensors;
using static TorchSharp.torch;
using K = QuantPeft.Formats.Peft.PeftErrorKind;

namespace QuantPeft.Trainers.Export;

/// <summary>
/// The <c>adapter_model.safetensors</c> of a VeRA or OSoRA folder: its tensors grouped by module under PEFT's key scheme
/// (<c>base_model.model.&lt;module&gt;.&lt;local name&gt;</c>), every shape and dtype checked before anything is read, and
/// read on demand as f32 (f64 stays f64) on the device of the weight they are merged into.
/// </summary>
internal sealed class AdapterTensorFile : IDisposable
{
    private readonly SafetensorsFile _file;

    private AdapterTensorFile(SafetensorsFile file) => _file = file;

    /// <summary>The file's path, which every error names.</summary>
    public string Path => _file.Path;

    /// <exception cref="PeftFormatException">The folder has no <c>adapter_model.safetensors</c>.</exception>
    /// <exception cref="SafetensorsFormatException">The file is malformed.</exception>
    public static AdapterTensorFile Open(string folder)
    {
        string path = System.IO.Path.Combine(folder, PeftAdapter.WeightsFileName);
        if (!File.Exists(path))
            throw new PeftFormatException(K.MissingWeights, folder, null, $"no {PeftAdapter.WeightsFileName} in the adapter folder");
        return new AdapterTensorFile(SafetensorsFile.Open(path));
    }

    /// <summary>
    /// The per-module tensors, by module path and then local name. Every tensor must be one of <paramref name="shared"/>
    /// or <c>base_model.model.&lt;module&gt;.&lt;one of locals&gt;</c>, and every module must have all of <paramref name="locals"/>.
    /// </summary>
    /// <exception cref="ExportException">An unknown or non-float tensor, or a module missing one of its tensors; the message names both.</exception>
    public SortedDictionary<string, Dictionary<string, long[]>> Modules(IReadOnlyList<string> locals, IReadOnlyCollection<string> shared, string method)
    {
        var modules = new SortedDictionary<string, Dictionary<string, long[]>>(StringComparer.Ordinal);
        foreach (var t in _file.Tensors)
        {
            if (t.DType is not (SafetensorsDType.F32 or SafetensorsDType.BF16 or SafetensorsDType.F16 or SafetensorsDType.F64))
                throw new ExportException($"{Path}: tensor '{t.Name}' has dtype {t.DType}; {method} tensors are F32, BF16, F16 or F64");
            if (shared.Contains(t.Name)) continue;
            string? local = t.Name.StartsWith(LoraTensorNames.Prefix, StringComparison.Ordinal)
                ? locals.FirstOrDefault(l => t.Name.EndsWith("." + l, StringComparison.Ordinal) && t.Name.Length > LoraTensorNames.Prefix.Length + l.Length + 1)
                : null;
            if (local is null)
                throw new ExportException($"{Path}: tensor '{t.Name}' is not part of a {method} adapter (expected {string.Join(", ", shared)} and {LoraTensorNames.Prefix}<module>.{{{string.Join(", ", locals)}}})");
            string module = t.Name[LoraTensorNames.Prefix.Length..^(local.Length + 1)];
            if (!modules.TryGetValue(module, out var parts)) modules[module] = parts = new Dictionary<string, long[]>(StringComparer.Ordinal);
            parts[local] = t.Shape;
        }
        foreach (var (module, parts) in modules)
            foreach (var local in locals)
                if (!parts.ContainsKey(local))
                    throw new ExportException($"{Path}: missing tensor '{Key(module, local)}' ({method} needs {string.Join(", ", locals)} for every adapted module)");
        if (modules.Count == 0)
            throw new ExportException($"{Path}: no adapter tensors (nothing named {LoraTensorNames.Prefix}<module>.{locals[0]})");
        return modules;
    }

    /// <summary>The names of every tensor in the file.</summary>
    public IEnumerable<string> Names => _file.Tensors.Select(t => t.Name);

    /// <summary>The shape of <paramref name="name"/>.</summary>
    /// <exception cref="ExportException">The tensor is missing; <paramref name="role"/> says what it is for.</exception>
    public long[] Shape(string name, string role) =>
        _file.TryGetTensor(name, out var info) ? info.Shape : throw new ExportException($"{Path}: missing tensor '{name}' ({role})");

    /// <summary>The tensor <paramref name="name"/> as f32 (f64 when stored so) on <paramref name="device"/>; the caller disposes it.</summary>
    public Tensor Read(string name, Device device)
    {
        var info = _file.GetTensor(name);
        var dtype = info.DType switch
        {
            SafetensorsDType.BF16 => ScalarType.BFloat16,
            SafetensorsDType.F16 => ScalarType.Float16,
            SafetensorsDType.F64 => ScalarType.Float64,
            _ => ScalarType.Float32,
        };
        using var raw = empty(info.Shape, dtype);
        if (raw.numel() > 0) _file.CopyTo(name, raw.bytes);
        return raw.to(dtype == ScalarType.Float64 ? ScalarType.Float64 : ScalarType.Float32, device, copy: true);
    }

    /// <summary>PEFT's key of <paramref name="local"/> in <paramref name="module"/>.</summary>
    public static string Key(string module, string local) => LoraTensorNames.Prefix + module + "." + local;

    /// <summary>A shape as the messages write it.</summary>
    public static string Text(long[] shape) => "[" + string.Join(", ", shape) + "]";

    public void Dispose() => _file.Dispose();
}
