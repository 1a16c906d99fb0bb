namespace QuantPeft.Optimizers;

/// <summary>
/// Bytes of optimizer state, counted from the real tensors (element size × element count), split by
/// where they live. On a CPU-only box an unpaged optimizer's state is "device" state, because the
/// device is the CPU; a paged optimizer's non-resident state is host (RAM) or disk (memory-mapped file).
/// </summary>
/// <param name="Device">Bytes resident on the compute device.</param>
/// <param name="Host">Bytes in host RAM that are not the device's (pinned pages of a paged optimizer).</param>
/// <param name="Disk">Bytes in memory-mapped backing files.</param>
public readonly record struct StateBytes(long Device, long Host, long Disk)
{
    /// <summary>All bytes together.</summary>
    public long Total => Device + Host + Disk;

    /// <summary>Adds two counts field by field.</summary>
    public static StateBytes operator +(StateBytes a, StateBytes b) =>
        new(a.Device + b.Device, a.Host + b.Host, a.Disk + b.Disk);
}
