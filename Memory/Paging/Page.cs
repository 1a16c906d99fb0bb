using static TorchSharp.torch;

namespace QuantPeft.Memory.Paging;

/// <summary>
/// One pageable tensor: a backing copy (host RAM or a mapped file) that always holds the data while the
/// page is out, and a device copy while the page is resident.
/// </summary>
public sealed class Page
{
    internal Page(string key, long[] shape, ScalarType dtype, Tensor backing, string? file)
    {
        Key = key;
        Shape = shape;
        DType = dtype;
        Backing = backing;
        File = file;
        Bytes = backing.numel() * backing.ElementSize;
    }

    /// <summary>The name given at allocation (diagnostics).</summary>
    public string Key { get; }

    /// <summary>Tensor shape.</summary>
    public long[] Shape { get; }

    /// <summary>Element type.</summary>
    public ScalarType DType { get; }

    /// <summary>Element size × element count.</summary>
    public long Bytes { get; }

    /// <summary>True while a device copy exists.</summary>
    public bool IsResident => ResidentCopy is not null;

    /// <summary>The device copy; valid only while the page is acquired.</summary>
    /// <exception cref="InvalidOperationException">The page is not acquired.</exception>
    public Tensor Resident => Pins > 0 && ResidentCopy is not null
        ? ResidentCopy
        : throw new InvalidOperationException($"page '{Key}' is used without being acquired from its pager");

    internal Tensor Backing { get; }
    internal string? File { get; }
    internal Tensor? ResidentCopy { get; set; }
    internal int Pins { get; set; }
    internal bool Dirty { get; set; }
    internal long LastUse { get; set; }
}
