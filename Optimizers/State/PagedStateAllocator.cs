using QuantPeft.Memory.Paging;
using static TorchSharp.torch;

namespace QuantPeft.Optimizers.State;

/// <summary>
/// Paged optimizer state: every state tensor is a <see cref="Page"/> of a <see cref="Pager"/>, resident on
/// the device only while its parameter is being updated (or prefetched for the next one).
/// </summary>
public sealed class PagedStateAllocator : IStateAllocator
{
    /// <summary>Creates the allocator over a new pager with <paramref name="options"/>.</summary>
    public PagedStateAllocator(PagerOptions options) => Pager = new Pager(options);

    /// <summary>The pager (residency statistics: resident, peak, loads, evictions).</summary>
    public Pager Pager { get; }

    /// <inheritdoc />
    public IStateTensor Allocate(string name, long[] shape, ScalarType dtype, Device device)
    {
        if (device.type != Pager.Options.Device.type || device.index != Pager.Options.Device.index)
            throw new OptimizerConfigException($"paged optimizer state '{name}': parameter is on {device}, the pager serves {Pager.Options.Device}");
        return new PagedStateTensor(name, Pager.Allocate(name, shape, dtype));
    }

    /// <inheritdoc />
    public IDisposable Acquire(IReadOnlyList<IStateTensor> tensors) => Pager.Acquire(Pages(tensors));

    /// <inheritdoc />
    public void Prefetch(IReadOnlyList<IStateTensor> tensors) => Pager.Prefetch(Pages(tensors));

    /// <inheritdoc />
    public StateBytes Measure(IEnumerable<IStateTensor> tensors)
    {
        long resident = 0, backing = 0;
        foreach (var t in tensors)
        {
            var page = ((PagedStateTensor)t).Page;
            backing += page.Bytes;
            if (page.IsResident) resident += page.Bytes;
        }
        return Pager.Backing == PageBacking.MappedFile
            ? new StateBytes(resident, 0, backing)
            : new StateBytes(resident, backing, 0);
    }

    /// <inheritdoc />
    public void Dispose() => Pager.Dispose();

    private static Page[] Pages(IReadOnlyList<IStateTensor> tensors) =>
        [.. tensors.Select(t => ((PagedStateTensor)t).Page)];

    private sealed class PagedStateTensor(string name, Page page) : IStateTensor
    {
        public string Name { get; } = name;
        public Page Page { get; } = page;
        public Tensor Value => Page.Resident;
        public long Bytes => Page.Bytes;
        public void Dispose() { } // the pager owns and frees its pages
    }
}
