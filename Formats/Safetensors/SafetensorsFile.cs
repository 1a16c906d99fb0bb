using System.Buffers;
using System.IO.MemoryMappedFiles;
using Microsoft.Win32.SafeHandles;
using Kind = QuantPeft.Formats.Safetensors.SafetensorsErrorKind;

namespace QuantPeft.Formats.Safetensors;

/// <summary>
/// An open safetensors file. Opening reads and validates only the header (a few KB even for a 13 GB
/// checkpoint). Tensor data is read on request: <see cref="GetSpan(string)"/> gives zero-copy views
/// into a read-only memory mapping created on first use; copies and conversions use positioned reads.
/// </summary>
/// <remarks>
/// Spans returned by <see cref="GetSpan(string)"/> point into the mapping and are valid only until
/// <see cref="Dispose"/>. Reading is thread-safe; disposing while another thread reads is not.
/// </remarks>
public sealed unsafe class SafetensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly SafetensorsTensorInfo[] _tensors;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;
    private readonly Lock _mapLock = new();
    private const int ChunkBytes = 1 << 18;
    private MemoryMappedFile? _map;
    private MemoryMappedViewAccessor? _view;
    private byte* _base;
    private bool _disposed;

    private SafetensorsFile(string path, SafeFileHandle handle, long fileLength, SafetensorsHeader header)
    {
        Path = path;
        _handle = handle;
        FileLength = fileLength;
        HeaderLength = header.HeaderLength;
        Metadata = header.Metadata;
        _tensors = header.Tensors;
        _byName = _tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Opens and validates <paramref name="path"/>, reading only its header.</summary>
    /// <exception cref="SafetensorsFormatException">The file is missing, unreadable or malformed.</exception>
    public static SafetensorsFile Open(string path)
    {
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            var kind = e is FileNotFoundException or DirectoryNotFoundException ? Kind.MissingShard : Kind.Io;
            throw new SafetensorsFormatException(kind, path, null, $"cannot open the file ({e.Message})", e);
        }
        try
        {
            long length = RandomAccess.GetLength(handle);
            return new SafetensorsFile(path, handle, length, SafetensorsHeader.Read(path, handle, length));
        }
        catch (Exception e)
        {
            handle.Dispose();
            if (e is IOException io)
                throw new SafetensorsFormatException(Kind.Io, path, null, $"cannot read the file ({io.Message})", io);
            throw;
        }
    }

    /// <summary>The path the file was opened with.</summary>
    public string Path { get; }

    /// <summary>Size of the file in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Length N of the JSON header (including its padding).</summary>
    public long HeaderLength { get; }

    /// <summary>File offset of the data section (8 + N).</summary>
    public long DataSectionOffset => 8 + HeaderLength;

    /// <summary>The header's <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor, in file order (ascending data offset).</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors => _tensors;

    /// <summary>Sum of all tensors' element counts.</summary>
    public long TotalElementCount => _tensors.Sum(t => t.ElementCount);

    /// <summary>Whether the file holds a tensor named <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>Looks a tensor up by name; false when absent.</summary>
    public bool TryGetTensor(string name, out SafetensorsTensorInfo tensor) => _byName.TryGetValue(name, out tensor!);

    /// <summary>Looks a tensor up by name.</summary>
    /// <exception cref="SafetensorsFormatException">No such tensor (<see cref="SafetensorsErrorKind.TensorNotFound"/>).</exception>
    public SafetensorsTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out var t) ? t
            : throw new SafetensorsFormatException(Kind.TensorNotFound, Path, name, $"no such tensor among the file's {_tensors.Length}");

    /// <summary>The tensor's bytes in the mapping, without copying. Tensors over 2 GiB need <see cref="GetSpan(SafetensorsTensorInfo, long, int)"/>.</summary>
    public ReadOnlySpan<byte> GetSpan(string name)
    {
        var t = GetTensor(name);
        if (t.ByteLength > int.MaxValue)
            throw new InvalidOperationException($"'{Path}': tensor '{name}' is {t.ByteLength} bytes, more than one span can hold; read it in windows");
        return GetSpan(t, 0, (int)t.ByteLength);
    }

    /// <summary>A window of <paramref name="length"/> bytes starting <paramref name="offset"/> bytes into the tensor's data.</summary>
    public ReadOnlySpan<byte> GetSpan(SafetensorsTensorInfo tensor, long offset, int length)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (!ReferenceEquals(tensor, _byName.GetValueOrDefault(tensor.Name)))
            throw new ArgumentException($"tensor '{tensor.Name}' does not belong to '{Path}'", nameof(tensor));
        if (offset < 0 || length < 0 || offset > tensor.ByteLength - length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"window [{offset}, {offset + length}) is outside the tensor's {tensor.ByteLength} bytes");
        return length == 0 ? [] : new ReadOnlySpan<byte>(MappedBase() + tensor.FileOffset + offset, length);
    }

    /// <summary>
    /// Copies the tensor's bytes into <paramref name="destination"/> (exactly its byte length) with
    /// positioned file reads. A copy through the kernel is several times faster than copying out of a
    /// fresh mapping (no page-table population; see perf/results/safetensors-read.md), so copies do not
    /// use the mapping.
    /// </summary>
    public void CopyTo(string name, Span<byte> destination)
    {
        var t = GetTensor(name);
        CheckLength(t, destination.Length, t.ByteLength, "bytes");
        ReadAt(t, 0, destination);
    }

    /// <summary>Streams the tensor's bytes into <paramref name="destination"/> through a small pooled buffer; works for any size.</summary>
    public void CopyTo(string name, Stream destination)
    {
        ArgumentNullException.ThrowIfNull(destination);
        var t = GetTensor(name);
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(ChunkBytes, Math.Max(1, t.ByteLength)));
        try
        {
            for (long done = 0; done < t.ByteLength; done += buffer.Length)
            {
                var chunk = buffer.AsSpan(0, (int)Math.Min(buffer.Length, t.ByteLength - done));
                ReadAt(t, done, chunk);
                destination.Write(chunk);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>A copy of the tensor's bytes.</summary>
    public byte[] ReadBytes(string name)
    {
        var t = GetTensor(name);
        var bytes = GC.AllocateUninitializedArray<byte>(checked((int)t.ByteLength));
        CopyTo(name, bytes);
        return bytes;
    }

    /// <summary>The tensor as float32 values, widened from F32/F16/BF16/F64, the integer types or BOOL.</summary>
    public float[] ReadFloat32(string name)
    {
        var t = GetTensor(name);
        var values = GC.AllocateUninitializedArray<float>(checked((int)t.ElementCount));
        ReadFloat32(name, values);
        return values;
    }

    /// <summary>Widens the tensor into <paramref name="destination"/> (exactly its element count), reading it in small chunks.</summary>
    /// <exception cref="SafetensorsFormatException">The dtype has no float32 conversion (<see cref="SafetensorsErrorKind.UnsupportedConversion"/>).</exception>
    public void ReadFloat32(string name, Span<float> destination)
    {
        var t = GetTensor(name);
        if (!Float32Conversion.IsSupported(t.DType))
            throw new SafetensorsFormatException(Kind.UnsupportedConversion, Path, name, $"{t.DType} has no float32 conversion here; read its raw bytes");
        CheckLength(t, destination.Length, t.ElementCount, "elements");
        if (destination.IsEmpty)
            return;
        int elementBytes = t.DType.BitSize() / 8;
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(ChunkBytes, t.ByteLength));
        try
        {
            int chunk = buffer.Length / elementBytes;
            for (int done = 0; done < destination.Length; done += chunk)
            {
                int n = Math.Min(chunk, destination.Length - done);
                var bytes = buffer.AsSpan(0, n * elementBytes);
                ReadAt(t, (long)done * elementBytes, bytes);
                Float32Conversion.Convert(t.DType, bytes, destination.Slice(done, n));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void ReadAt(SafetensorsTensorInfo t, long offset, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        int done = 0;
        while (done < destination.Length)
        {
            int read = RandomAccess.Read(_handle, destination[done..], t.FileOffset + offset + done);
            if (read == 0)
                throw new SafetensorsFormatException(Kind.Io, Path, t.Name, $"file ended at byte {t.FileOffset + offset + done} (was it truncated after opening?)");
            done += read;
        }
    }

    private static void CheckLength(SafetensorsTensorInfo t, long given, long needed, string unit)
    {
        if (given != needed)
            throw new ArgumentException($"tensor '{t.Name}' holds {needed} {unit}; the destination holds {given}", "destination");
    }

    private byte* MappedBase()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_base != null)
            return _base;
        lock (_mapLock)
        {
            if (_base == null)
            {
                _map = MemoryMappedFile.CreateFromFile(_handle, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: true);
                _view = _map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
                byte* p = null;
                _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
                _base = p + _view.PointerOffset;
            }
            return _base;
        }
    }

    /// <summary>Unmaps the file and closes it; spans obtained earlier become invalid.</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        if (_view is not null)
        {
            _view.SafeMemoryMappedViewHandle.ReleasePointer();
            _view.Dispose();
        }
        _map?.Dispose();
        _handle.Dispose();
        _base = null;
    }
}
