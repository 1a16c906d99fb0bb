namespace QuantPeft.Memory.CostModel;

/// <summary>The predicted memory of one strategy: the device peak with its breakdown, and the host share.</summary>
public sealed class MemoryEstimate
{
    /// <summary>Device bytes by component at the peak phase (components that are not alive then are 0).</summary>
    public required IReadOnlyDictionary<MemoryComponent, long> Device { get; init; }

    /// <summary>Host bytes by component (the host side of paged optimizer states).</summary>
    public required IReadOnlyDictionary<MemoryComponent, long> Host { get; init; }

    /// <summary>Which phase holds the peak: <c>backward</c> (activations alive) or <c>optimizer-step</c>.</summary>
    public required string PeakPhase { get; init; }

    /// <summary>Predicted device peak: the sum of <see cref="Device"/>.</summary>
    public long PeakBytes => Device.Values.Sum();

    /// <summary>Predicted host bytes: the sum of <see cref="Host"/>.</summary>
    public long HostBytes => Host.Values.Sum();

    /// <summary>The peak without runtime overhead and fragmentation: what <c>max_memory_allocated()</c> would report.</summary>
    public long AllocatedBytes => PeakBytes - Device[MemoryComponent.RuntimeOverhead] - Device[MemoryComponent.Fragmentation];
}
