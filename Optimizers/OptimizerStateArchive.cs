using System.Text;
using System.Text.Json;
using QuantPeft.Formats.Archive;
using TorchSharp;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers;

/// <summary>
/// Saves an optimizer's state to the project's zstd archive (docs/formats.md) and restores it, so a run can
/// stop and resume with the same moments, projectors and counters.
/// </summary>
/// <remarks>
/// Entries: <c>scalars.json</c> (counters and learning rates), <c>tensors.json</c> (name, dtype, shape of each
/// state tensor, in order), and <c>tensor/&lt;name&gt;</c> with each tensor's raw little-endian bytes. The archive
/// checksums every entry; it is written to a temporary file and renamed, so a crash never leaves half a state.
/// Tensors are brought to the CPU to be written and restored on the device of the optimizer's parameters by
/// <see cref="IOptimizer.LoadStateDict"/>.
/// </remarks>
public static class OptimizerStateArchive
{
    private sealed record TensorEntry(string Name, string DType, long[] Shape);

    /// <summary>Writes <paramref name="optimizer"/>'s state to <paramref name="path"/>.</summary>
    public static void Save(IOptimizer optimizer, string path)
    {
        using var state = optimizer.StateDict();
        using var writer = ArchiveWriter.Create(path);
        writer.WriteEntry("scalars.json", Encoding.UTF8.GetBytes(state.ScalarsToJson()));
        var index = state.Tensors.Select(t => new TensorEntry(t.Name, t.Tensor.dtype.ToString(), t.Tensor.shape)).ToList();
        writer.WriteEntry("tensors.json", JsonSerializer.SerializeToUtf8Bytes(index));
        foreach (var (name, tensor) in state.Tensors)
        {
            using var host = tensor.detach().to(CPU).contiguous();
            writer.WriteEntry("tensor/" + name, host.bytes);
        }
        writer.Commit();
    }

    /// <summary>Restores the state saved by <see cref="Save"/> into <paramref name="optimizer"/>.</summary>
    /// <exception cref="ArchiveFormatException">The archive is missing, corrupt or lacks an entry.</exception>
    /// <exception cref="OptimizerConfigException">The state does not fit the optimizer (names, shapes).</exception>
    public static void Load(IOptimizer optimizer, string path)
    {
        using var reader = ArchiveReader.Open(path);
        string scalars = Encoding.UTF8.GetString(reader.ReadAllBytes("scalars.json"));
        List<TensorEntry> index;
        try { index = JsonSerializer.Deserialize<List<TensorEntry>>(reader.ReadAllBytes("tensors.json")) ?? []; }
        catch (JsonException e) { throw new OptimizerConfigException($"'{path}': tensors.json is not a tensor index ({e.Message})"); }
        var tensors = new List<(string, Tensor)>(index.Count);
        try
        {
            foreach (TensorEntry entry in index)
            {
                if (!Enum.TryParse(entry.DType, out ScalarType dtype))
                    throw new OptimizerConfigException($"'{path}': tensor '{entry.Name}' has unknown dtype '{entry.DType}'");
                byte[] bytes = reader.ReadAllBytes("tensor/" + entry.Name);
                var t = torch.empty(entry.Shape, dtype);
                if (t.bytes.Length != bytes.Length)
                {
                    t.Dispose();
                    throw new OptimizerConfigException($"'{path}': tensor '{entry.Name}' holds {bytes.Length} bytes, {entry.DType} [{string.Join(", ", entry.Shape)}] needs {t.bytes.Length}");
                }
                bytes.CopyTo(t.bytes);
                tensors.Add((entry.Name, t));
            }
        }
        catch
        {
            foreach (var (_, t) in tensors) t.Dispose();
            throw;
        }
        using var state = OptimizerStateDict.FromParts(tensors, scalars);
        optimizer.LoadStateDict(state);
    }
}
