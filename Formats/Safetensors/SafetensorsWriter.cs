using System.Buffers.Binary;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// Writes one safetensors file tensor by tensor, with memory bounded by the largest buffer the caller
/// passes in: the layout is declared up front (so the header is final before any data), then each
/// tensor's bytes are supplied in any order. Everything goes to a temporary file in the target folder
/// that replaces the target only on <see cref="Commit"/>; disposing without committing, or any failure
/// while writing, deletes it.
/// </summary>
/// <example>
/// <code>
/// using var w = SafetensorsWriter.Create("out.safetensors", layouts, new Dictionary&lt;string, string&gt; { ["format"] = "pt" });
/// foreach (var t in w.Tensors) w.Write(t.Name, bytesOf(t.Name));
/// w.Commit();
/// </code>
/// </example>
public sealed class SafetensorsWriter : IDisposable
{
    /// <summary>Suffix of temporary files (ignored by the repository's .gitignore).</summary>
    internal const string TempSuffix = ".qpeft-tmp";

    private readonly SafetensorsTensorInfo[] _tensors;
    private readonly Dictionary<string, int> _index;
    private readonly bool[] _written;
    private FileStream? _file;
    private bool _completed;

    private SafetensorsWriter(string path, string tempPath, SafetensorsTensorInfo[] tensors, FileStream file, long fileLength)
    {
        Path = path;
        TempPath = tempPath;
        _tensors = tensors;
        _file = file;
        FileLength = fileLength;
        _written = new bool[tensors.Length];
        _index = new Dictionary<string, int>(tensors.Length, StringComparer.Ordinal);
        for (int i = 0; i < tensors.Length; i++)
            _index[tensors[i].Name] = i;
    }

    /// <summary>
    /// Plans the file, writes its header to a temporary sibling of <paramref name="path"/> and sizes it
    /// (the data region starts as a hole, so tensors never written read as zeros and cost no disk).
    /// </summary>
    /// <param name="path">The file to produce.</param>
    /// <param name="layout">Every tensor's name, dtype and shape.</param>
    /// <param name="metadata">The header's <c>__metadata__</c>, or null for none (HF writers use <c>{"format": "pt"}</c>).</param>
    /// <exception cref="ArgumentException">A name is repeated or reserved, or a shape is invalid.</exception>
    public static SafetensorsWriter Create(string path, IEnumerable<SafetensorsTensorLayout> layout, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var (tensors, header) = HeaderBuilder.Build(layout, metadata);
        string full = System.IO.Path.GetFullPath(path);
        string tempPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(full)!,
            $".{System.IO.Path.GetFileName(full)}.{Guid.NewGuid():N}{TempSuffix}");
        var file = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 1 << 16);
        try
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            file.Write(length);
            file.Write(header);
            long fileLength = 8 + header.Length + (tensors.Length == 0 ? 0 : tensors[^1].DataEnd);
            file.SetLength(fileLength);
            return new SafetensorsWriter(path, tempPath, tensors, file, fileLength);
        }
        catch
        {
            file.Dispose();
            File.Delete(tempPath);
            throw;
        }
    }

    /// <summary>
    /// Writes a whole file in one call, streaming each entry's source in file order; nothing is left
    /// behind if a source throws.
    /// </summary>
    public static void WriteFile(string path, IEnumerable<SafetensorsTensorEntry> entries, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var writer = CreateFrom(path, entries, out var sources, metadata);
        writer.WriteAll(sources);
        writer.Commit();
    }

    internal static SafetensorsWriter CreateFrom(string path, IEnumerable<SafetensorsTensorEntry> entries, out Dictionary<string, SafetensorsTensorSource> sources, IReadOnlyDictionary<string, string>? metadata)
    {
        ArgumentNullException.ThrowIfNull(entries);
        var list = entries.ToList();
        var writer = Create(path, list.Select(e => e.Layout), metadata);
        sources = list.ToDictionary(e => e.Layout.Name, e => e.Source, StringComparer.Ordinal);
        return writer;
    }

    internal void WriteAll(Dictionary<string, SafetensorsTensorSource> sources)
    {
        foreach (var t in _tensors)
            sources[t.Name].WriteTo(this, t.Name);
    }

    /// <summary>The file that <see cref="Commit"/> produces.</summary>
    public string Path { get; }

    /// <summary>The temporary file being written.</summary>
    public string TempPath { get; }

    /// <summary>The planned tensors, in file order, with their final offsets.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => _tensors;

    /// <summary>Size of the finished file.</summary>
    public long FileLength { get; }

    /// <summary>Writes the tensor's bytes (exactly its byte length).</summary>
    public void Write(string name, ReadOnlySpan<byte> data)
    {
        var (t, file) = Begin(name);
        if (data.Length != t.ByteLength)
            throw new ArgumentException($"tensor '{name}': {t.DType} {t.ShapeText} needs {t.ByteLength} bytes; {data.Length} were given", nameof(data));
        try
        {
            file.Write(data);
        }
        catch
        {
            Abort();
            throw;
        }
        _written[_index[name]] = true;
    }

    /// <summary>Calls <paramref name="writeData"/> with a stream that takes exactly the tensor's bytes.</summary>
    /// <exception cref="InvalidOperationException">The callback wrote too many or too few bytes (the file is abandoned).</exception>
    public void Write(string name, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        var (t, file) = Begin(name);
        Guard(() =>
        {
            var stream = new TensorDataStream(file, name, t.ByteLength);
            writeData(stream);
            if (stream.Written != t.ByteLength)
                throw new InvalidOperationException($"tensor '{name}': the callback wrote {stream.Written} bytes; {t.DType} {t.ShapeText} needs {t.ByteLength}");
        });
        _written[_index[name]] = true;
    }

    /// <summary>Leaves the tensor all zeros without writing anything (a hole in the sparse file).</summary>
    public void WriteZeros(string name)
    {
        Begin(name);
        _written[_index[name]] = true;
    }

    private (SafetensorsTensorInfo Tensor, FileStream File) Begin(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var file = _file ?? throw new InvalidOperationException($"'{Path}': the writer is closed (committed, disposed or failed)");
        if (!_index.TryGetValue(name, out int i))
            throw new ArgumentException($"'{Path}': tensor '{name}' was not declared", nameof(name));
        if (_written[i])
            throw new InvalidOperationException($"'{Path}': tensor '{name}' was already written");
        file.Position = _tensors[i].FileOffset;
        return (_tensors[i], file);
    }

    private void Guard(Action write)
    {
        try
        {
            write();
        }
        catch
        {
            Abort();
            throw;
        }
    }

    /// <summary>Flushes the temporary file to disk and closes it, without moving it into place.</summary>
    internal void Complete()
    {
        var file = _file ?? throw new InvalidOperationException($"'{Path}': the writer is closed (committed, disposed or failed)");
        var missing = _tensors.Where((_, i) => !_written[i]).Select(t => t.Name).ToList();
        if (missing.Count > 0)
            throw new InvalidOperationException($"'{Path}': {missing.Count} tensor(s) were never written, e.g. '{missing[0]}'; use WriteZeros for intentionally empty data");
        Guard(() => file.Flush(flushToDisk: true));
        file.Dispose();
        _file = null;
        _completed = true;
    }

    /// <summary>Checks every tensor was written, flushes, and atomically replaces <see cref="Path"/> with the new file.</summary>
    public void Commit()
    {
        Complete();
        try
        {
            File.Move(TempPath, Path, overwrite: true);
        }
        catch
        {
            File.Delete(TempPath);
            throw;
        }
    }

    private void Abort()
    {
        _file?.Dispose();
        _file = null;
        File.Delete(TempPath);
    }

    /// <summary>Deletes the temporary file unless the writer was committed.</summary>
    public void Dispose()
    {
        if (_file is not null)
            Abort();
        else if (_completed && File.Exists(TempPath))
            File.Delete(TempPath);
    }
}
