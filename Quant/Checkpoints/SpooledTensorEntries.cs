using QuantPeft.Formats.Safetensors;
using QuantPeft.Quant.Codecs;

namespace QuantPeft.Quant.Checkpoints;

/// <summary>
/// The tensor list of a checkpoint rewrite: tensors passed through are copied from the input when the sharded writer
/// asks for them, and serialized pieces (quantized codes, statistics, factors) wait in a spool file beside the output,
/// so memory stays at one tensor's pieces however large the model is. Shared by the bitsandbytes and LQ-LoRA writers.
/// </summary>
internal sealed class SpooledTensorEntries : IDisposable
{
    private readonly FileStream _spool;
    private readonly List<SafetensorsTensorEntry> _entries = [];

    /// <summary>Opens a spool file in <paramref name="folder"/> (the output's temporary folder); it is deleted on dispose.</summary>
    public SpooledTensorEntries(string folder) =>
        _spool = new FileStream(Path.Combine(folder, ".spool"), FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20, FileOptions.DeleteOnClose);

    /// <summary>The entries in the order added.</summary>
    public IReadOnlyList<SafetensorsTensorEntry> Entries => _entries;

    /// <summary>Adds <paramref name="t"/> unchanged, read from <paramref name="checkpoint"/> when written.</summary>
    public void AddCopy(SafetensorsCheckpoint checkpoint, SafetensorsTensorInfo t)
    {
        string name = t.Name;
        _entries.Add(SafetensorsTensorEntry.FromCallback(name, t.DType, t.Shape, s => checkpoint.FileOf(name).CopyTo(name, s)));
    }

    /// <summary>Spools <paramref name="pieces"/> and adds each as <c>&lt;prefix&gt;.&lt;suffix&gt;</c>.</summary>
    public void AddPieces(string prefix, IEnumerable<SerializedTensor> pieces)
    {
        foreach (SerializedTensor piece in pieces)
        {
            long offset = _spool.Position;
            int length = piece.Data.Length;
            _spool.Write(piece.Data);
            if (!SafetensorsDTypes.TryParse(piece.DType, out SafetensorsDType dtype))
                throw new InvalidOperationException($"serializer produced unknown dtype {piece.DType}");
            _entries.Add(SafetensorsTensorEntry.FromCallback(prefix + "." + piece.NameSuffix, dtype, [.. piece.Shape], s => CopyRange(offset, length, s)));
        }
    }

    /// <summary>Writes the entries as safetensors shards of at most <paramref name="maxShardBytes"/> into <paramref name="folder"/>.</summary>
    public SafetensorsShardedWriteResult WriteShards(string folder, long maxShardBytes)
    {
        _spool.Flush();
        return SafetensorsShardedWriter.Write(folder, _entries, maxShardBytes, new Dictionary<string, string> { ["format"] = "pt" });
    }

    /// <summary>Closes and deletes the spool file.</summary>
    public void Dispose() => _spool.Dispose();

    private void CopyRange(long offset, int length, Stream destination)
    {
        _spool.Position = offset;
        byte[] buffer = new byte[Math.Min(length, 1 << 20)];
        int left = length;
        while (left > 0)
        {
            int n = _spool.Read(buffer, 0, Math.Min(buffer.Length, left));
            if (n <= 0) throw new IOException("spool file ended early");
            destination.Write(buffer, 0, n);
            left -= n;
        }
    }
}
