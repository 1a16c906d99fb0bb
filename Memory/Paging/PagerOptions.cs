using static TorchSharp.torch;

namespace QuantPeft.Memory.Paging;

/// <summary>Where a pager keeps the non-resident copy of its pages.</summary>
public enum PageBacking
{
    /// <summary>Pinned host memory when CUDA is available, a memory-mapped file otherwise.</summary>
    Auto,
    /// <summary>Page-locked host RAM (fast, asynchronous host↔GPU copies); needs CUDA.</summary>
    PinnedHost,
    /// <summary>Ordinary host RAM.</summary>
    Host,
    /// <summary>A disk file mapped into memory (one file per page); the OS decides what stays in RAM.</summary>
    MappedFile,
}

/// <summary>Settings of a <see cref="Pager"/>.</summary>
/// <param name="BudgetBytes">The most page bytes that may be resident on the device at once.</param>
/// <param name="Device">The compute device pages are brought to.</param>
/// <param name="Backing">Where non-resident copies live.</param>
/// <param name="Directory">For <see cref="PageBacking.MappedFile"/>: the folder for page files (a fresh
/// temporary folder when null); the pager deletes its files when disposed.</param>
public sealed record PagerOptions(long BudgetBytes, Device Device, PageBacking Backing = PageBacking.Auto, string? Directory = null);
